"""The stage-transition event feed (`events:` in the config): stage changes and segment adds and removes as
CloudEvents, kept in the state's outbox and delivered after the CRM writes to a JSON Lines file and webhooks."""
