"""Loopback sandboxes that speak real CRM wire protocols, for tests, the demo and benchmarks."""
