"""Talking to each CRM: one package per system, with everything about the wire and nothing about the funnel.

`crm/<system>/` holds the client (auth, sessions, retries, paging, error classification), query builders,
describe, and `connection.py`: the one connection a run opens per configured source of that system and hands
to that source and to every target writing back to it (one login, one connection pool, one API budget).
`connector/sources/<system>` and `connector/writers/<system>` sit side by side on top of it and never import
each other. `transport.py` holds what every client shares (https unless loopback, the CA bundle).
"""
