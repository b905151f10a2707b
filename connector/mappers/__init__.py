"""Mappers: pure functions from raw source records to the shared funnel schema."""
