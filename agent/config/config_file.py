"""Reads the --config file: a regular file of at most 1 MiB, YAML whose keys the agent reads appear once each."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agent.config.echo import shown
from agent.config.inputs import ConfigFile, format_validation_error, yaml_path
from agent.config.models import ConfigError

if TYPE_CHECKING:
    from yaml import Node

# A configuration file is a few hundred bytes per connection (MAX_TARGETS of them fit many times over); a bound
# keeps `--config /dev/zero` or a log file given by mistake from filling memory.
MAX_CONFIG_BYTES = 1024 * 1024
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
    stat.S_IFSOCK: "a socket",
}
# Which keys of which mappings the agent reads ("*": every key). A key given twice there would silently drop the
# first value (PyYAML keeps the last), a whole target for a connection name; the application's own keys elsewhere
# in a shared file are not the agent's to judge.
_CONNECTION: dict[str, Any] = {"*": {}, "aws_iam_auth": {"*": {}}}
_READ: dict[str, Any] = {
    "database": {"connections": {"*": _CONNECTION}},
    "logging": {"level": {}},
    "app": {"*": {}},
}


def read_config_file(path: Path) -> ConfigFile:
    """The validated file, or ConfigError naming --config and what is wrong with it."""
    text = _read_text(path)
    raw = _parse(path, text)
    if not isinstance(raw, dict):
        raise ConfigError([f"--config {path}: expected a YAML mapping with database.connections"])
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, env_prefix=None)) from None


def _read_text(path: Path) -> str:
    """At most MAX_CONFIG_BYTES of a regular file. O_NONBLOCK: opening a FIFO (put there after any check) returns
    at once instead of waiting for a writer; the file itself is then checked through the open descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError([f"--config {path}: cannot read the file ({exc.strerror or exc})"]) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ConfigError([f"--config {path}: is {kind}, not a regular file (expected a YAML file)"])
    with os.fdopen(fd, "rb") as file:
        data = _bounded_read(path, file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"--config {path}: not UTF-8 text (expected a YAML file)"]) from None


def _bounded_read(path: Path, file: Any) -> bytes:
    try:
        data: bytes = file.read(MAX_CONFIG_BYTES + 1)  # one byte more tells a file that is too big
    except OSError as exc:
        raise ConfigError([f"--config {path}: cannot read the file ({exc.strerror or exc})"]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            [f"--config {path}: larger than 1 MiB ({MAX_CONFIG_BYTES} bytes), too big for a configuration file"]
        )
    return data


def _parse(path: Path, text: str) -> Any:
    import yaml

    try:
        return _compose_and_construct(yaml.SafeLoader, text, f"--config {path}")
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError([f"--config {path}: nested too deeply to be a configuration file"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError([f"--config {path}: not valid YAML{at}"]) from None


def _compose_and_construct(loader_class: Any, text: str, top: str) -> Any:
    """yaml.safe_load, with the node tree checked for duplicate keys between composing and constructing."""
    loader = loader_class(text)  # reads the stream's first characters: may raise a YAMLError already
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicates = _duplicates(node, _READ, (), top)
        if duplicates:
            raise ConfigError(duplicates)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _duplicates(node: Node, spec: dict[str, Any], path: tuple[str, ...], top: str) -> list[str]:
    """A problem per key given more than once in a mapping the agent reads, with the lines it is on."""
    from yaml import MappingNode, ScalarNode

    if not isinstance(node, MappingNode):
        return []
    lines: dict[str, list[int]] = {}
    values: dict[str, Node] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        name = str(key.value)
        if name in spec or "*" in spec:
            lines.setdefault(name, []).append(key.start_mark.line + 1)
            values[name] = value
    where = yaml_path(path) if path else top
    problems = [
        f"{where}: key {shown(name)} is given {len(at)} times (lines {', '.join(map(str, at))}); YAML keeps only"
        " the last, so the others would be silently dropped: give each key once"
        for name, at in lines.items()
        if len(at) > 1
    ]
    for name, value in values.items():
        problems += _duplicates(value, spec.get(name, spec.get("*", {})), (*path, name), top)
    return problems
