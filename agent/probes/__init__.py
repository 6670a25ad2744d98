"""Probes: one module per thing the backend needs (credentials, secret, token, database)."""
