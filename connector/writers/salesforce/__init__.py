"""Salesforce as a target: `config` (the YAML and its check against the source), `writer` (stage labels,
campaign members). The org itself is reached through connector/crm/salesforce."""
