"""The container credentials fetcher the agent gives botocore's chain: fast to give up, and it says who answered.

botocore's MetadataRetrievalError keeps only the status and the body of a refusal. A 403 from the credentials
endpoint (a token it does not accept) and a 403 from a proxy between the task and the endpoint need different fixes,
and only the answer's headers tell them apart (a proxy adds `Via`, RFC 9110 7.6.3). This fetcher keeps those
headers and chains them, as an EndpointAnswer, under the error botocore raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.aws.capped_http import capped

# The container endpoint is on the host or link-local: it answers in milliseconds or not at all.
FETCH_ATTEMPTS = 2
FETCH_SLEEP = 0.1
# Headers that say who answered; the body is already in botocore's message, and no header here carries a secret.
_ANSWER_HEADERS = ("via", "server", "x-squid-error", "content-type")


class EndpointAnswer(Exception):
    """A non-200 answer to a credentials request: its status and the headers that tell who sent it."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = {k: v for k, v in headers.items() if k in _ANSWER_HEADERS}


def container_fetcher(timeout: float, verify: bool) -> Any:
    """An AioContainerMetadataFetcher that gives up within `timeout` and keeps the headers of a refusal."""
    # Private API (listed in agent/shared/private_api.py): _RefCountedSession and the fetcher's class constants;
    # refuse_redirects() below wraps AIOHTTPSession._get_session.
    from aiobotocore.utils import AioContainerMetadataFetcher, _RefCountedSession
    from botocore.exceptions import MetadataRetrievalError

    class AnswerSession(capped(_RefCountedSession, "credentials")):  # type: ignore[misc]  # body within the cap
        """Remembers the status and headers of the last answer (None while a request is under way or failed)."""

        last: EndpointAnswer | None = None

        async def send(self, request: Any) -> Any:
            self.last = None
            response = await super().send(request)
            if response.status_code != 200:
                self.last = EndpointAnswer(response.status_code, {k.lower(): v for k, v in response.headers.items()})
            return response

    class ProbeContainerFetcher(AioContainerMetadataFetcher):  # type: ignore[misc]
        RETRY_ATTEMPTS = FETCH_ATTEMPTS
        SLEEP_TIME = FETCH_SLEEP

        def __init__(self) -> None:
            self.TIMEOUT_SECONDS = timeout
            # The fetcher opens a new HTTP session per fetch (every credentials run); with verify on, each one
            # loads the CA bundle (~25 ms of CPU, most of an idle agent's), which only an https endpoint needs.
            self._answers = refuse_redirects(AnswerSession(timeout=timeout, verify=verify))
            super().__init__(session=self._answers)

        async def retrieve_full_uri(self, full_url: str, headers: Any = None) -> Any:
            try:
                return await super().retrieve_full_uri(full_url, headers)
            except MetadataRetrievalError as exc:
                self._explain(exc)
                raise

        async def retrieve_uri(self, relative_uri: str) -> Any:
            try:
                return await super().retrieve_uri(relative_uri)
            except MetadataRetrievalError as exc:
                self._explain(exc)
                raise

        def _explain(self, exc: BaseException) -> None:
            """Chain the refusal's headers under botocore's error when the last attempt got an answer."""
            if self._answers.last is not None:
                exc.__cause__ = self._answers.last

    return ProbeContainerFetcher()


def refuse_redirects(http_session: Any) -> Any:
    """Make an aiobotocore HTTP session (AIOHTTPSession) answer a redirect as the 3xx it is, never follow it.

    A credentials source must answer itself: aiohttp follows a 302 by default, so an endpoint (or anything in
    between) could send the fetch to another host and have its keys used. botocore's own urllib3 session never
    follows one; aiobotocore's leaves aiohttp's default. The fetchers then see a non-200 answer and fail.
    """
    # Private API (listed in agent/shared/private_api.py): AIOHTTPSession._get_session, where aiobotocore gets the
    # aiohttp.ClientSession whose request() it awaits.
    get_session = http_session._get_session

    async def without_redirects(proxy_url: str | None) -> _WithoutRedirects:
        return _WithoutRedirects(await get_session(proxy_url))

    http_session._get_session = without_redirects
    return http_session


class _WithoutRedirects:
    """An aiohttp.ClientSession whose request() never follows a redirect (all aiobotocore's send() calls)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        return self._session.request(method, url, allow_redirects=False, **kwargs)
