"""Enrichment and contract files as a source: `config` (the YAML), `formats` (CSV, XLSX, JSON Lines),
`source` (reading them as full snapshots)."""
