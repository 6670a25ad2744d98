"""Reads the environment and the --config file: the one place (with `environ`) that reads either."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from agent.config.build import build_config
from agent.config.config_file import read_config_file
from agent.config.inputs import ECS_METADATA_VARIABLE, EnvSettings, format_validation_error
from agent.config.models import AgentConfig, ConfigError


def load_config(config_path: Path | None = None) -> AgentConfig:
    """Read the environment (and the YAML file, if given) into an AgentConfig, or raise ConfigError."""

    try:
        env = EnvSettings()  # pydantic-settings reads os.environ
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix="AGENT_")) from None
    file = read_config_file(config_path) if config_path else None
    names = ("AWS_REGION", "AWS_DEFAULT_REGION", "LOG_LEVEL", ECS_METADATA_VARIABLE)
    standard = {k: os.environ[k] for k in names if k in os.environ}
    return build_config(env, file, standard)
