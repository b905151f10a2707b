"""Segment files for marketers as a target: `config` (the YAML), `writer` (one CSV per segment)."""
