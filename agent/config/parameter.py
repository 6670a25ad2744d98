"""SSM Parameter Store names and ARNs as GetParameter takes them, checked before any call is made.

Rules from the AWS Systems Manager User Guide, "Creating Parameter Store parameters in Systems Manager"
(https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html) and the
GetParameter / LabelParameterVersion API references:
- a name is 1-1011 of a-z A-Z 0-9 _ . - and /, no spaces; a hierarchy has a leading / and at most 15 levels;
- a name may not begin with "aws" or "ssm" (case-insensitive): AWS keeps those, though two of its own
  hierarchies are readable (/aws/service/... public parameters, /aws/reference/secretsmanager/... secrets);
- GetParameter takes the name or the parameter's ARN (arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME, the
  name without its leading /), optionally with a selector: `:VERSION` (a number) or `:LABEL` (1-100 of
  a-z A-Z 0-9 _ . -, not beginning with a digit, "aws" or "ssm").
"""

from __future__ import annotations

import re

from agent.config.echo import shown

MAX_NAME_CHARACTERS = 1011
MAX_LEVELS = 15
_NAME = re.compile(r"^[A-Za-z0-9_./-]+$")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_ARN = re.compile(r"^arn:(aws[a-z-]*):ssm:([a-z0-9-]+):([0-9]{12}):parameter/(.+)$")
_READABLE_RESERVED = ("/aws/service/", "/aws/reference/secretsmanager/")
EXPECTED = (
    "expected a Parameter Store name (/app/db/password or app-db-password) or its ARN"
    " (arn:aws:ssm:eu-west-1:123456789012:parameter/app/db/password), optionally with :VERSION or :LABEL"
)


def parameter_problem(value: str) -> str | None:
    """What is wrong with a parameter name or ARN as GetParameter's Name, or None if nothing is."""
    text = value.strip()
    if not text:
        return f"is empty: {EXPECTED}"
    if text.lower().startswith(("ssm:", "ssm://", "parameter:")):  # a scheme some tools print; GetParameter has none
        return f"{shown(text)}: leave out the {text.split(':', 1)[0]!r} prefix; {EXPECTED}"
    if text.startswith("arn:"):
        found = _ARN.match(text)
        if found is None:
            return f"{shown(text)} is not a parameter ARN: {EXPECTED}"
        name = found.group(4)
        # The ARN of a hierarchical parameter drops the name's leading slash: arn:...:parameter/app/db/password.
        return _name_problem(name if name.startswith("/") or "/" not in name else f"/{name}", text)
    return _name_problem(text, text)


def parameter_problems(value: str, field: str, secret_field: str | None) -> list[str]:
    """The problems of AGENT_DB_PASSWORD_PARAMETER (or its YAML key, `field`), each naming the field.

    `secret_field` names a secret set for the same database: the agent reads the password from one place in AWS,
    since with two, which one the task's password should match would be a guess.
    """
    problem = parameter_problem(value)
    problems = [f"{field}: {problem}"] if problem else []
    if secret_field is not None:
        problems.append(
            f"{field}: {secret_field} is set too; the agent reads the password from one place in AWS: keep the one"
            " the backend's task definition reads (its `secrets` valueFrom)"
        )
    return problems


def parameter_name(value: str) -> str:
    """The name part of a parameter name or ARN, without a selector: what `aws ssm` commands take as --name."""
    text = value.strip()
    found = _ARN.match(text)
    if found is not None:
        name = found.group(4)
        text = name if "/" not in name else f"/{name.lstrip('/')}"
    return text.split(":", 1)[0]


def split_selector(value: str) -> tuple[str, str]:
    """A parameter name or ARN and its `:VERSION` / `:LABEL` selector ("" without one)."""
    text = value.strip()
    head, marker, tail = text.partition(":parameter/") if text.startswith("arn:") else ("", "", text)
    name, _, selector = tail.partition(":")
    return head + marker + name, selector


def _name_problem(name_with_selector: str, given: str) -> str | None:
    name, _, selector = name_with_selector.partition(":")
    quoted = shown(given)
    if not name:
        return f"{quoted} has no parameter name: {EXPECTED}"
    if len(name) > MAX_NAME_CHARACTERS:
        return f"the parameter name has {len(name)} characters; Parameter Store allows at most {MAX_NAME_CHARACTERS}"
    if not _NAME.match(name):
        return (
            f"{quoted}: a parameter name may hold only a-z A-Z 0-9 _ . - and / (no spaces), with at most one"
            f" :VERSION or :LABEL after it; {EXPECTED}"
        )
    levels = [part for part in name.split("/") if part]
    if "/" in name and (not name.startswith("/") or "" in name.split("/")[1:]):
        return f"{quoted}: a hierarchy starts with / and has no empty level (e.g. /app/db/password)"
    if len(levels) > MAX_LEVELS:
        return f"{quoted} has {len(levels)} levels; Parameter Store allows at most {MAX_LEVELS}"
    if _reserved(name):
        return f"{quoted}: names beginning with 'aws' or 'ssm' are reserved by AWS; {EXPECTED}"
    return _selector_problem(selector, quoted) if selector or name_with_selector.endswith(":") else None


def _reserved(name: str) -> bool:
    if name.startswith(_READABLE_RESERVED):
        return False
    first = name.lstrip("/").split("/", 1)[0].lower()
    return first.startswith(("aws", "ssm")) if not name.startswith("/") else first in ("aws", "ssm")


def _selector_problem(selector: str, quoted: str) -> str | None:
    if selector.isdigit():
        return None if int(selector) > 0 else f"{quoted}: parameter versions start at 1"
    if _LABEL.match(selector) and not selector[0].isdigit() and not selector.lower().startswith(("aws", "ssm")):
        return None
    return (
        f"{quoted}: after the name, ':' takes a version (a number) or a label (1-100 of a-z A-Z 0-9 _ . -, not"
        " beginning with a digit, 'aws' or 'ssm')"
    )
