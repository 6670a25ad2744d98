"""ecs/cloudformation.yaml as a deployed stack would see it: its Conditions evaluated for given parameter values,
and every Fn::If resolved by them (AWS::NoValue removed), so tests can read the resources one stack would get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agent.lint.documents import CfnLoader

TEMPLATE = Path(__file__).resolve().parents[2] / "ecs" / "cloudformation.yaml"
_NO_VALUE = object()
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/db-AbCdEf"
KMS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# The stack ecs/task-definition.json and the policy files describe: a password from a secret under a customer
# managed key, no IAM auth, ECS Exec off.
EXAMPLE = {"DbSecretArn": SECRET_ARN, "DbSecretKmsKeyArn": KMS_KEY_ARN}
# The password in Parameter Store (AGENT_DB_PASSWORD_PARAMETER), a SecureString under a customer managed key.
PARAMETER_STACK = {
    "DbPasswordParameterArn": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/orders/db/password",
    "DbPasswordParameterKmsKeyArn": KMS_KEY_ARN,
}


def raw_template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)  # a SafeLoader
    return loaded


def parameters(given: dict[str, str]) -> dict[str, str]:
    """Every parameter's value: `given`, else its Default ('' when it has none)."""
    declared = raw_template()["Parameters"]
    return {name: str(given.get(name, spec.get("Default", ""))) for name, spec in declared.items()}


def evaluate(expression: Any, values: dict[str, str], conditions: dict[str, Any]) -> Any:
    """A condition function (Fn::Equals/Not/And/Or, Condition, Ref) for these parameter values."""
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        return values[argument]
    if function in ("Condition", "Fn::Condition"):
        return evaluate(conditions[argument], values, conditions)
    items = [evaluate(a, values, conditions) for a in argument]
    if function == "Fn::Equals":
        return items[0] == items[1]
    if function == "Fn::Not":
        return not items[0]
    if function == "Fn::And":
        return all(items)
    if function == "Fn::Or":
        return any(items)
    raise AssertionError(f"no evaluator for {function}")


def condition_values(given: dict[str, str]) -> dict[str, bool]:
    conditions = raw_template()["Conditions"]
    values = parameters(given)
    return {name: bool(evaluate(c, values, conditions)) for name, c in conditions.items()}


def stack(given: dict[str, str]) -> dict[str, Any]:
    """The template with every Fn::If decided for the parameter values `given`."""
    decided = _decide(raw_template(), condition_values(given))
    assert isinstance(decided, dict)
    return decided


def _decide(value: Any, conditions: dict[str, bool]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, true, false = value["Fn::If"]
            return _decide(true if conditions[name] else false, conditions)
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        pairs = {k: _decide(v, conditions) for k, v in value.items()}
        return {k: v for k, v in pairs.items() if v is not _NO_VALUE}
    if isinstance(value, list):
        items = [_decide(v, conditions) for v in value]
        return [v for v in items if v is not _NO_VALUE]
    return value
