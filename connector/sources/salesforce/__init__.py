"""Salesforce as a source: `config` (the YAML), `source` (composes the rest), `org` (describe checks, picklist
meaning), `streams` (incremental SystemModstamp reads), `cursor` (their cursors), `read_path` (the one
REST-or-Bulk decision), `reconcile` (periodic id re-read), `contact_roles` (opportunities' contacts). The org
itself is reached through connector/crm/salesforce."""
