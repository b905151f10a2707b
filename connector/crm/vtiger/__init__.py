"""vtiger CRM's webservice: `client` (transport, sessions), `vtql` (queries), `describe` (module fields),
`settings` (where and how to reach it, from the YAML), `connection` (the run's one connection)."""
