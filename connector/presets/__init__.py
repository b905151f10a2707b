"""Shipped stage-model presets (YAML)."""
