"""Task definitions as the files give them: `register-task-definition` input, `describe-task-definition` output
(`{"taskDefinition": {...}}`) and CloudFormation templates (JSON or YAML) with `AWS::ECS::TaskDefinition`
resources. CloudFormation's intrinsics (!Ref, !Sub, {"Fn::GetAtt": ...}) become Unknown: their values exist only
when a stack is deployed, so no check ever treats one as a literal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 4 * 1024 * 1024  # a task definition is at most 64 KiB (ECS quota); a template 1 MiB (CloudFormation)
TASK_DEFINITION_TYPE = "AWS::ECS::TaskDefinition"


class UnreadableInput(Exception):
    """A file that is not one of the shapes above; the message names the file and what was expected."""


@dataclass(frozen=True)
class Unknown:
    """A value CloudFormation resolves at deploy time (Ref, Fn::Sub, Fn::GetAtt, ...)."""


@dataclass(frozen=True)
class TaskDefinition:
    """One task definition in the ECS API's shape (camelCase keys; intrinsics as Unknown).

    `where` is its place in the file ("" for a task definition file, "Resources.NAME.Properties" in a template);
    `cfn` says field paths are spelt as CloudFormation spells them (PascalCase)."""

    file: str
    where: str
    body: dict[str, Any]
    cfn: bool = False

    def field(self, path: str) -> str:
        """A field's path as the file spells it: containerDefinitions[1].environment[DB_PASSWORD]."""
        if self.cfn:
            path = ".".join(part[:1].upper() + part[1:] for part in path.split("."))
        return f"{self.where}.{path}" if self.where else path


def read_task_definitions(path: Path) -> list[TaskDefinition]:
    """Every task definition in one file; raise UnreadableInput naming the file and the problem."""
    document = _parse(path)
    name = str(path)
    if isinstance(document, dict) and isinstance(document.get("Resources"), dict):
        return _from_template(name, document["Resources"])
    if isinstance(document, dict) and isinstance(document.get("taskDefinition"), dict):
        return [TaskDefinition(name, "taskDefinition", _known(document["taskDefinition"]))]
    if isinstance(document, dict) and "containerDefinitions" in document:
        return [TaskDefinition(name, "", _known(document))]
    raise UnreadableInput(
        f"{name}: not a task definition: expected register-task-definition JSON (containerDefinitions),"
        " describe-task-definition output (taskDefinition) or a CloudFormation template (Resources)"
    )


def _parse(path: Path) -> Any:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UnreadableInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise UnreadableInput(f"{path}: larger than {MAX_BYTES // 1024 // 1024} MiB: not a task definition")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableInput(f"{path}: not UTF-8 text") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:  # the message quotes no content, only where
            raise UnreadableInput(f"{path}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    try:
        return yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:  # its str() quotes the line, which may hold a password: position only
        mark = exc.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise UnreadableInput(f"{path}: invalid YAML: {exc.problem or exc.context}{at}") from None
    except yaml.YAMLError as exc:
        raise UnreadableInput(f"{path}: invalid YAML: {type(exc).__name__}") from None


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (!Ref, !Sub, !GetAtt, ...) read as their long forms
    ({"Ref": ...}, {"Fn::Sub": ...}), as CloudFormation reads them."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def _from_template(name: str, resources: dict[str, Any]) -> list[TaskDefinition]:
    found = []
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") == TASK_DEFINITION_TYPE:
            properties = _known(resource.get("Properties"))  # an Fn::If of whole properties: unknown, so empty
            body = _camel(properties) if isinstance(properties, dict) else {}
            found.append(TaskDefinition(name, f"Resources.{logical_id}.Properties", body, cfn=True))
    return found


def _known(value: Any) -> Any:
    """The value with every intrinsic ({"Ref": x}, {"Fn::...": x}) replaced by Unknown, recursively."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key,) = value
            if key == "Ref" or str(key).startswith("Fn::"):
                return Unknown()
        return {str(k): _known(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_known(v) for v in value]
    return value


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names in the ECS API's camelCase (ContainerDefinitions ->
    containerDefinitions), recursively; values are left alone (environment names keep their case)."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value
