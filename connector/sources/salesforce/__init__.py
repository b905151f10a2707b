"""Salesforce as a source: `config` (the YAML), `source` (incremental reads, deletions, reconciliation,
picklist meaning), `cursor` (SystemModstamp cursors). The org itself is reached through
connector/crm/salesforce."""
