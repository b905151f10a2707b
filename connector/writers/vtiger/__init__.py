"""vtiger CRM as a target: `config` (the YAML and its checks against the source), `writer` (labels and
segment memberships). The CRM itself is reached through connector/crm/vtiger."""
