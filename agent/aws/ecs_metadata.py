"""Which ECS cluster, service and task family this task belongs to, from the task metadata endpoint (v4).

Read once at start. The endpoint is link-local and answers in milliseconds on ECS; anywhere else (a laptop,
a plain Docker host) it does not exist, and the agent says so once and uses "unknown".
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from agent.aws.capped_http import CappedBody
from agent.shared.answers import AnswerTooLarge

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
# CloudWatch dimension values are 1-1024 characters; names from ECS are far shorter, this is a guard.
_MAX_VALUE = 1024


@dataclass(frozen=True, slots=True)
class TaskIdentity:
    """Where the task runs, as CloudWatch dimensions see it."""

    cluster: str
    service: str
    family: str
    task_id: str  # the last part of the task ARN: which task in CloudWatch Logs, never a dimension

    @classmethod
    def unknown(cls) -> TaskIdentity:
        """No metadata endpoint (not on ECS), or it did not answer."""
        return cls(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN)


def identity_from_task(body: Mapping[str, object]) -> TaskIdentity:
    """The identity in a `${ECS_CONTAINER_METADATA_URI_V4}/task` document (missing fields read "unknown")."""
    family = _text(body.get("Family"))
    # ServiceName is only there for services on EC2/ECS Anywhere with ECS agent >= 1.63.1 (not on Fargate):
    # the task family is the usual stand-in, since one service normally runs one family.
    service = _text(body.get("ServiceName")) if body.get("ServiceName") else family
    return TaskIdentity(
        cluster=_last_part(_text(body.get("Cluster")), "cluster/"),
        service=service,
        family=family,
        task_id=_last_part(_text(body.get("TaskARN")), "/"),
    )


async def read_task_identity(base_uri: str | None, timeout_seconds: float) -> TaskIdentity:
    """Ask the task metadata endpoint who we are; log once what was found or why it is "unknown"."""
    if not base_uri:
        log.warning(
            "ECS_CONTAINER_METADATA_URI_V4 is not set (not running on ECS?):"
            " the CloudWatch metrics use ClusterName and ServiceName %r",
            UNKNOWN,
        )
        return TaskIdentity.unknown()
    try:
        body = await _fetch_task(base_uri.rstrip("/") + "/task", timeout_seconds)
    # ValueError: a body that is not JSON; AnswerTooLarge: one past the cap on an answer
    except (aiohttp.ClientError, TimeoutError, ValueError, AnswerTooLarge) as exc:
        why = "no answer in time" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        log.warning(
            "cannot read the ECS task metadata (%s): the CloudWatch metrics use ClusterName and ServiceName %r",
            why,
            UNKNOWN,
        )
        return TaskIdentity.unknown()
    identity = identity_from_task(body)
    log.info(
        "ECS task: cluster %s, service %s, family %s",
        identity.cluster,
        identity.service,
        identity.family,
        extra={"service_from": "ServiceName" if body.get("ServiceName") else "Family"},
    )
    return identity


async def _fetch_task(url: str, timeout_seconds: float) -> Mapping[str, object]:
    async with asyncio.timeout(timeout_seconds), aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        # Read within the cap on one answer; the endpoint's content type is not guaranteed, so no json(): loads.
        body = json.loads(await CappedBody(response, url).read())
    if not isinstance(body, dict):
        raise ValueError("the task metadata is not a JSON object")
    return body


def _text(value: object) -> str:
    text = str(value).strip() if value is not None else ""
    return text[:_MAX_VALUE] or UNKNOWN


def _last_part(text: str, separator: str) -> str:
    """`arn:aws:ecs:region:account:cluster/prod` -> `prod`; a short name stays as it is."""
    return text.rsplit(separator, 1)[-1] or UNKNOWN
