"""Configuration: what the user gave (environment, YAML file, DSNs), validated once into frozen models.

Kept empty on purpose: `agent.config.environ` serves the healthcheck, which must not import pydantic.
"""
