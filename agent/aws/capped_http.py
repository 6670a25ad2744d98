"""aiobotocore's HTTP sessions with a cap on each answer's body (see agent.shared.answers).

botocore keeps a whole body in memory before parsing it: AIOHTTPSession.send awaits `http_response.content`,
aiohttp's read() of everything the peer sends. A credentials endpoint, an STS or a Secrets Manager that is not what
it claims (a wrong AWS_ENDPOINT_URL, a proxy) could so grow the agent without bound. The capped sessions ask for
the answer as a stream (`stream_output`, what botocore itself does for a streaming operation) and read the body
here, at most MAX_ANSWER_BYTES; a larger Content-Length is refused before a byte of the body is read. They are
plugged in through aiobotocore's documented `AioConfig(http_session_cls=...)` and, for the container credentials
fetcher, around the session class the fetcher expects (agent/aws/clients.py).

aiobotocore, botocore and aiohttp are imported inside the functions: an agent without AWS features never loads them.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from agent.shared.answers import MAX_ANSWER_BYTES, AnswerTooLarge

_READ_SIZE = 64 * 1024


@functools.cache
def capped(session_class: type, source: str = "") -> type:
    """`session_class` (aiobotocore's AIOHTTPSession or a subclass) reading every body within the cap; `source`
    is the code prefix of an AnswerTooLarge it raises ('' = the calling probe's service)."""
    return type(f"Capped{session_class.__name__}", (_CappedSend, session_class), {"answer_source": source})


class _CappedSend:
    """The send() of a capped session: the parent's, streaming, then the body read here."""

    answer_source = ""

    async def send(self, request: Any) -> Any:
        from botocore.exceptions import HTTPClientError

        streaming = request.stream_output
        request.stream_output = True  # the parent would read the whole body; it is read below, within the cap
        try:
            response = await super().send(request)  # type: ignore[misc]
        except HTTPClientError as exc:
            closed = _unreadable_head(exc, request)
            if closed is None:
                raise
            raise closed from exc
        finally:
            request.stream_output = streaming
        if not streaming:
            # aiobotocore's AioAWSResponse._content_prop reads `raw.read()` once and keeps it: the capped read
            # (private API: listed in agent/shared/private_api.py).
            response.raw = CappedBody(response.raw, _peer(request.url), self.answer_source)
            await _read(response, request)
        return response


class CappedBody:
    """An aiohttp response whose read() returns at most `limit` bytes of body, else drops the connection and
    raises AnswerTooLarge; everything else is the response's own."""

    def __init__(self, raw: Any, peer: str, source: str = "", limit: int = MAX_ANSWER_BYTES) -> None:
        self._raw, self._peer, self._source, self._limit = raw, peer, source, limit

    async def read(self) -> bytes:
        raw = self._raw
        claimed = raw.content_length
        if claimed is not None and claimed > self._limit:
            self._refuse(claimed)
        body = bytearray()
        try:
            while chunk := await raw.content.read(_READ_SIZE):
                body += chunk
                if len(body) > self._limit:
                    self._refuse(None)
        except BaseException:  # refused, cut, or cancelled by the probe's timeout: never left to the pool
            raw.close()
            raise
        raw.release()
        return bytes(body)

    def _refuse(self, claimed: int | None) -> None:
        self._raw.close()  # the connection goes, not back to the pool with the rest of the answer in it
        raise AnswerTooLarge(self._peer, self._limit, claimed=claimed, source=self._source)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


async def _read(response: Any, request: Any) -> None:
    """Read the body as the parent's send() would have, with the errors it would have raised (botocore's)."""
    import aiohttp
    from botocore.exceptions import ConnectionClosedError, HTTPClientError, ReadTimeoutError

    try:
        await response.content
    except aiohttp.ServerTimeoutError as exc:
        raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        raise ConnectionClosedError(error=exc, request=request, endpoint_url=request.url) from exc
    except aiohttp.ClientError as exc:
        raise HTTPClientError(error=exc) from exc


def _unreadable_head(exc: Any, request: Any) -> Exception | None:
    """An HTTPClientError as botocore means it: an answer whose status line or headers are not HTTP is
    ConnectionClosedError (aiobotocore's BadStatusLine clause; urllib3's ProtocolError in botocore), but aiohttp 3.x
    raises it as a ClientResponseError, which reads as a generic HTTPClientError: the credentials fetcher would not
    retry it, and the credentials probe would blame STS for the credentials endpoint."""
    import aiohttp
    from botocore.exceptions import ConnectionClosedError

    cause = exc.kwargs.get("error")
    if isinstance(cause, aiohttp.ClientResponseError):
        closed: Exception = ConnectionClosedError(error=cause, request=request, endpoint_url=request.url)
        return closed
    return None


def _peer(url: str) -> str:
    """The URL without its query (a presigned or credentials URL may carry secrets there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
