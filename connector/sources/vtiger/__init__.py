"""vtiger CRM as a source: `config` (the YAML), `source` (incremental reads by `modifiedtime`, deletions,
field discovery). The CRM itself is reached through connector/crm/vtiger."""
