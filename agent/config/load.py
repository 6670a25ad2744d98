"""Reads the environment and the --config file: the one place (with `environ`) that reads either."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config.build import build_config
from agent.config.inputs import ECS_METADATA_VARIABLE, ConfigFile, EnvSettings, format_validation_error
from agent.config.models import AgentConfig, ConfigError

# The standard variables the agent reads besides AGENT_* (botocore reads the AWS ones itself too).
STANDARD_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "LOG_LEVEL", ECS_METADATA_VARIABLE)


def load_config(config_path: Path | None = None) -> AgentConfig:
    """Read the environment (and the YAML file, if given) into an AgentConfig, or raise ConfigError."""

    try:
        env = EnvSettings()  # pydantic-settings reads os.environ
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix="AGENT_")) from None
    file = _read_file(config_path) if config_path else None
    standard = {k: os.environ[k] for k in STANDARD_VARIABLES if k in os.environ}
    return build_config(env, file, standard)


def _read_file(path: Path) -> ConfigFile:
    import yaml

    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"--config {path}: cannot read the file ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"--config {path}: not UTF-8 text (expected a YAML file)"]) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError([f"--config {path}: nested too deeply to be a configuration file"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError([f"--config {path}: not valid YAML{at}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"--config {path}: expected a YAML mapping with database.connections"])
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix=None)) from None
