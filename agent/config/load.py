"""Reads the environment and the --config file: the one place (with `environ`) that reads either."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from agent.config.build import build_config
from agent.config.config_file import read_config_file
from agent.config.inputs import ECS_METADATA_VARIABLE, EnvSettings, format_validation_error
from agent.config.models import AgentConfig, ConfigError

# The standard variables the agent reads besides AGENT_* (botocore reads the AWS ones itself too).
STANDARD_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "LOG_LEVEL", ECS_METADATA_VARIABLE)
_PREFIX = "AGENT_"


def load_config(config_path: Path | None = None) -> AgentConfig:
    """Read the environment (and the YAML file, if given) into an AgentConfig, or raise ConfigError."""

    try:
        env = EnvSettings()  # pydantic-settings reads os.environ
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix=_PREFIX)) from None
    file = read_config_file(config_path) if config_path else None
    standard = {k: os.environ[k] for k in STANDARD_VARIABLES if k in os.environ}
    return build_config(env, file, standard)


def config_from_environment(environment: Mapping[str, str]) -> AgentConfig:
    """The AgentConfig `serve` would build in a container whose whole environment is `environment` (names to
    values), or ConfigError with the lines `serve` would print. For `lint`, which reads a task definition's
    `environment` and `secrets` instead of os.environ.

    Names match as pydantic-settings matches them: AGENT_ case-insensitively, the rest of the name likewise.
    """
    # Strings, validated (and converted) by the model as pydantic-settings validates os.environ's.
    fields: dict[str, Any] = {
        name[len(_PREFIX) :].lower(): value for name, value in environment.items() if _is_agent(name)
    }
    try:
        env = _GivenEnvironment(**fields)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix=_PREFIX)) from None
    standard = {k: environment[k] for k in STANDARD_VARIABLES if k in environment}
    return build_config(env, None, standard)


class _GivenEnvironment(EnvSettings):
    """EnvSettings from the values given to it only: pydantic-settings would read os.environ too (even through
    model_validate), and the environment `lint` checks is a task definition's, not this process's."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        del settings_cls, env_settings, dotenv_settings, file_secret_settings  # pydantic-settings passes them all
        return (init_settings,)


def _is_agent(name: str) -> bool:
    return name[: len(_PREFIX)].upper() == _PREFIX
