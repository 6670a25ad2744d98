"""The CloudWatch Embedded Metric Format specification as a checker: its published JSON schema, brought up to
today's limits, plus the rules a schema cannot express (referenced members present, values of the right type).

https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

UNITS = [
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes"),
    *("Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "None"),
    *(f"{u}/Second" for u in ("Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes")),
    *(f"{u}/Second" for u in ("Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Count")),
]
NAME = {"type": "string", "minLength": 1, "maxLength": 255}
# The schema published with the EMF specification, with today's limits: 30 dimensions per set (was 9),
# 100 metrics per directive, StorageResolution 1 or 60.
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": NAME,
                            "Dimensions": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "array", "maxItems": 30, "items": NAME},
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": NAME,
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def spec_problems(doc: dict[str, Any], now_ms: int) -> list[str]:
    """Every way `doc` breaks the EMF specification (empty when it is a valid document)."""
    validator = jsonschema.Draft7Validator(EMF_SCHEMA)
    problems = [f"schema: {e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(doc)]
    if problems:
        return problems
    timestamp = doc["_aws"]["Timestamp"]
    if not now_ms - 14 * 86_400_000 < timestamp < now_ms + 2 * 3_600_000:  # CloudWatch rejects the rest
        problems.append(f"Timestamp {timestamp} is not within two weeks before / two hours after now")
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        for key in {key for dimensions in directive["Dimensions"] for key in dimensions}:
            value = doc.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= 1024 or key.startswith(":"):
                problems.append(f"dimension {key}: root member must be a string of 1-1024 characters, got {value!r}")
        for metric in directive["Metrics"]:
            problems += _value_problems(metric["Name"], doc.get(metric["Name"], "<missing>"))
    if len(json.dumps(doc, separators=(",", ":")).encode()) > 256 * 1024:
        problems.append("larger than a CloudWatch Logs event (256 KB)")
    return problems


def _value_problems(name: str, value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numbers or not 1 <= len(values) <= 100:
        return [f"metric {name}: root member must be a number or 1-100 numbers, got {value!r}"]
    return []
