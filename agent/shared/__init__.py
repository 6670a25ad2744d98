"""Shared vocabulary every layer speaks: failure reasons, redaction, hint templates, cost counters.

Imports nothing else of the agent's.
"""
