"""Salesforce's REST and Bulk API 2.0: `client` (transport), `auth` (login flows, secrets), `bulk`, `soql`
(queries), `budget` (the daily API allocation), `describe_cache` (org metadata kept between runs), `settings`
(where and how to reach an org, from the YAML), `connection` (the run's one connection)."""
