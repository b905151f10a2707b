"""Source adapters: each reads one system and yields raw records, registered by YAML `type`."""
