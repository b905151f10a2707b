"""Writers: push stage labels and segment memberships to a target, registered by YAML `type`."""
