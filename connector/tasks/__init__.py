"""Follow-up tasks for sales (`tasks:` in the config): a trigger per person, one CRM task per occurrence."""
