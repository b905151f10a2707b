"""Loopback sandboxes that speak real CRM wire protocols (salesforce/, vtiger/, tls.py) and connector's demo
(demo/: synthetic people, seeding, a seeded world), for the demo, the tests and the benchmarks.

A distribution of its own (sandboxes/pyproject.toml), so connector's wheel and Docker image carry none of it,
nor its fixed test credentials. The sandboxes import nothing from connector; only the demo does.
"""
