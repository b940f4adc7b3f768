"""The APIMP HTTP client: one request in, one parsed answer or one precise error out.

It owns the wire details (bearer header, the code/data/error envelope, status codes) and the
retry policy. It does not poll and knows nothing of MCP. The `httpx2.AsyncClient` is passed in
so that one connection pool serves the whole server and tests can point it anywhere.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2

from apimp_video_mcp import defaults
from apimp_video_mcp.errors import (
    AnswerTooLargeError,
    ApimpError,
    AuthenticationError,
    ConfigurationError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamServerError,
    UpstreamUnreachableError,
)
from apimp_video_mcp.models import TASK_ID_PATTERN, SubmitRequest, TaskSnapshot, UploadedFile
from apimp_video_mcp.upstream.answers import read_at_most
from apimp_video_mcp.upstream.multipart import MultipartFileBody
from apimp_video_mcp.upstream.retry import (
    RetryPolicy,
    is_retryable_status,
    parse_retry_after,
    retry_delay_seconds,
)

logger = logging.getLogger(__name__)

SUBMIT_PATH: Final = "/api/generate/submit"
STATUS_PATH: Final = "/api/generate/status/{task_id}"
UPLOAD_STREAM_PATH: Final = "/api/common/upload/stream"

# These mean no connection was ever made, so the request provably never reached APIMP: the only
# failures after which a submit may be sent again without risking a second charge.
_NEVER_SENT: Final = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)

# Raised while a request is encoded, before any byte goes out (h11 refuses a header value with a
# line break or a NUL; a non-ASCII one cannot be encoded at all): the request provably never left.
_REFUSED_BEFORE_SENDING: Final = (httpx2.LocalProtocolError, UnicodeEncodeError)

_MAY_EXIST: Final = (
    "The task may have been created (and charged) upstream, so it was NOT resubmitted. Check your "
    "APIMP dashboard before submitting again."
)

Sleep = Callable[[float], Awaitable[None]]

_ONE_ATTEMPT: Final = RetryPolicy(max_attempts=1)


class SharedHttpClient:
    """The one HTTP client a server uses for its whole life, created by its first request.

    Creating an `httpx2.AsyncClient` loads the TLS trust store (about 70 ms), and a host waits
    for the server's tool list, which needs no HTTP: so start-up does not pay for it.
    """

    def __init__(self, base_url: str, *, request_timeout_seconds: float) -> None:
        self._base_url = base_url
        self._request_timeout_seconds = request_timeout_seconds
        self._client: httpx2.AsyncClient | None = None

    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = build_http_client(
                self._base_url, request_timeout_seconds=self._request_timeout_seconds
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def build_http_client(base_url: str, *, request_timeout_seconds: float) -> httpx2.AsyncClient:
    """An HTTP client for APIMP with every timeout explicit and a pool sized for many tasks."""
    return httpx2.AsyncClient(
        base_url=base_url,
        timeout=httpx2.Timeout(request_timeout_seconds, connect=defaults.CONNECT_TIMEOUT_SECONDS),
        limits=httpx2.Limits(
            max_connections=defaults.HTTP_MAX_CONNECTIONS,
            max_keepalive_connections=defaults.HTTP_MAX_KEEPALIVE_CONNECTIONS,
        ),
        headers={"user-agent": "apimp-video-mcp", "accept": "application/json"},
        follow_redirects=True,
    )


class ApimpClient:
    """Typed access to APIMP's generation endpoints."""

    def __init__(
        self,
        http: Callable[[], httpx2.AsyncClient],
        api_key: Callable[[], str],
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Sleep = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._shared_http = http
        self._api_key = api_key
        self._retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    def with_api_key(self, api_key: Callable[[], str]) -> ApimpClient:
        """This client (the same pool and retry policy) sending another APIMP key: a principal's own."""
        return ApimpClient(
            self._shared_http, api_key, retry_policy=self._retry_policy, sleep=self._sleep, rng=self._rng
        )

    @property
    def _http(self) -> httpx2.AsyncClient:
        return self._shared_http()

    async def submit(self, request: SubmitRequest) -> TaskSnapshot:
        """Create a task. Sent again only if the connection never opened: never risk paying twice."""
        body = request.to_body()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._exchange("POST", SUBMIT_PATH, json=body, headers=self._auth_headers())
                break
            except _NEVER_SENT as exc:
                delay = retry_delay_seconds(attempt, self._retry_policy, None, self._rng)
                if delay is None:
                    raise UpstreamUnreachableError(
                        f"Could not connect to APIMP at {_without_credentials(str(self._http.base_url))} "
                        f"({type(exc).__name__}); "
                        "the video was not submitted and nothing was charged. Check APIMP_BASE_URL "
                        "and the network, then try again."
                    ) from None
                logger.info("submit: connection failed (%s), retrying in %.1f s", type(exc).__name__, delay)
                await self._sleep(delay)
            except _REFUSED_BEFORE_SENDING as exc:
                # Raised while the request line and headers were being encoded: not a byte was sent.
                raise ConfigurationError(
                    f"The submit request could not be encoded ({type(exc).__name__}): a header value is "
                    "not allowed in HTTP, most likely APIMP_API_KEY (printable ASCII only, no spaces or "
                    "line breaks). The video was NOT submitted and nothing was charged."
                ) from None
            except httpx2.TransportError as exc:
                raise SubmitOutcomeUnknownError(
                    f"The submit request was sent to APIMP but no answer came back ({type(exc).__name__}). "
                    f"{_MAY_EXIST}"
                ) from None
            except AnswerTooLargeError as exc:
                raise SubmitOutcomeUnknownError(f"{exc} {_MAY_EXIST}") from None
        if response.status_code >= 500:
            # A gateway error after the request arrived: APIMP may still have created the task.
            message = _error_message(response)
            raise SubmitOutcomeUnknownError(
                f"APIMP answered the submit with HTTP {response.status_code} ({message}). {_MAY_EXIST}"
            )
        return _accepted_task(self._submit_data(response), response)

    def _submit_data(self, response: httpx2.Response) -> dict[str, Any]:
        """The `data` of a submit answer; a success answer we cannot read means the outcome is unknown."""
        try:
            return self._data_or_raise(response, task_id=None)
        except UpstreamError as exc:
            if exc.status_code >= 400:
                raise  # APIMP said no: nothing was created
            raise SubmitOutcomeUnknownError(
                f"APIMP answered the submit with HTTP {response.status_code} but a body that is not its "
                f"JSON envelope ({_excerpt(response)}). {_MAY_EXIST}"
            ) from None

    async def get_status(self, task_id: str, *, retry: bool = True) -> TaskSnapshot:
        """One status query, retried on rate limits, server errors and network failures.

        `retry=False` makes one attempt only, for a caller with its own schedule (a poller), so
        that every failure reaches it at once and no two backoffs stack. An answer about another
        task is refused: journaling it would record a task we never asked about, and reporting it
        would tell the caller another task's status as theirs.
        """
        path = STATUS_PATH.format(task_id=task_id)
        response = await self._send_with_retries(
            lambda: self._exchange("GET", path, headers=self._auth_headers()),
            what=f"check task {task_id}",
            policy=None if retry else _ONE_ATTEMPT,
        )
        data = self._data_or_raise(response, task_id=task_id)
        answered = data.get("task_id")
        if answered not in (None, "") and str(answered) != task_id:
            raise UpstreamError(
                response.status_code,
                f"APIMP answered the status query for task {task_id!r} with the status of task "
                f"{str(answered)[:200]!r}; the answer was ignored. Try again shortly.",
            )
        return TaskSnapshot.from_wire(data, task_id=task_id)

    async def upload_file(self, body: MultipartFileBody) -> UploadedFile:
        """Upload a file through APIMP's Public API; returns where it is hosted and until when.

        Unlike a submit, an upload is retried like a status query (network errors, 429, 5xx): a
        repeated upload costs no credit, at worst a spare copy that APIMP deletes after 72 h, while
        giving up would make the agent repeat the whole call. Each attempt re-reads the file.
        """
        headers = {**self._auth_headers(), **body.headers}
        response = await self._send_with_retries(
            lambda: self._exchange("POST", UPLOAD_STREAM_PATH, content=body, headers=headers),
            what=f"upload {body.filename}",
        )
        envelope = _json_or_none(response)
        if isinstance(envelope, dict) and envelope.get("success") is False and response.status_code < 400:
            code = envelope.get("code")
            status = code if isinstance(code, int) and code >= 400 else 400
            raise _error_for(status, _error_message(response), response, None)
        data = self._data_or_raise(response, task_id=None)
        try:
            return UploadedFile.from_wire(data)
        except ValueError:
            raise UpstreamError(
                response.status_code, f"the upload answer names no file URL: {response.text[:200]!r}"
            ) from None

    async def _send_with_retries(
        self,
        send: Callable[[], Awaitable[httpx2.Response]],
        *,
        what: str,
        policy: RetryPolicy | None = None,
    ) -> httpx2.Response:
        """Send until an answer not worth retrying, or until the policy gives up: then the last answer
        is returned, for the caller to raise its precise error from."""
        policy = policy or self._retry_policy
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await send()
            except httpx2.TransportError as exc:
                delay = retry_delay_seconds(attempt, policy, None, self._rng)
                if delay is None:
                    attempts = f" after {attempt} attempts" if attempt > 1 else ""
                    raise UpstreamUnreachableError(
                        f"Could not reach APIMP to {what} ({type(exc).__name__}){attempts}; "
                        "try again shortly."
                    ) from None
                logger.info("%s: %s, retrying in %.1f s", what, type(exc).__name__, delay)
                await self._sleep(delay)
                continue
            if not is_retryable_status(response.status_code):
                return response
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), response.headers.get("retry-after-ms")
            )
            delay = retry_delay_seconds(attempt, policy, retry_after, self._rng)
            if delay is None:
                return response
            logger.info("%s: HTTP %s, retrying in %.1f s", what, response.status_code, delay)
            await self._sleep(delay)

    async def _exchange(self, method: str, path: str, **options: Any) -> httpx2.Response:
        """One request, its answer read whole within the read timeout and up to a size.

        httpx2's timeouts bound each read, not the answer: one trickled a byte at a time, or one
        without end, would otherwise hold the caller (a submit, a poller) or the memory forever.
        """
        async with self._http.stream(method, path, **options) as response:
            body = await _read_answer(response, within_seconds=self._http.timeout.read)
        headers = [(name, value) for name, value in response.headers.multi_items() if name not in _DECODED]
        return httpx2.Response(response.status_code, headers=headers, content=body, request=response.request)

    def _auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key()}"}

    def _data_or_raise(self, response: httpx2.Response, *, task_id: str | None) -> dict[str, Any]:
        """Unwrap `{"code": 200, "data": {...}}`, or raise the error the status and envelope describe.

        The docs do not promise that the HTTP status equals `code`, so an error in either counts.
        """
        envelope = _json_or_none(response)
        code = envelope.get("code") if isinstance(envelope, dict) else None
        status = response.status_code
        if status < 400 and isinstance(code, int) and code >= 400:
            status = code
        if status < 400:
            data = envelope.get("data") if isinstance(envelope, dict) else None
            if isinstance(data, dict):
                return data
            raise UpstreamError(status, f"unexpected response body: {response.text[:200]!r}")
        raise _error_for(status, _error_message(response), response, task_id)


# Headers about the answer's encoding on the wire: its body is kept decoded, so they no longer apply.
_DECODED: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def _read_answer(response: httpx2.Response, *, within_seconds: float | None) -> bytes:
    """The decoded body, by `within_seconds` from its first byte and at most UPSTREAM_ANSWER_MAX_BYTES."""
    try:
        with anyio.fail_after(defaults.REQUEST_TIMEOUT_SECONDS if within_seconds is None else within_seconds):
            body = await read_at_most(response, defaults.UPSTREAM_ANSWER_MAX_BYTES)
    except TimeoutError:
        raise httpx2.ReadTimeout(
            "the answer did not arrive whole within the read timeout", request=response.request
        ) from None
    if len(body) > defaults.UPSTREAM_ANSWER_MAX_BYTES:
        raise AnswerTooLargeError(response.status_code, defaults.UPSTREAM_ANSWER_MAX_BYTES)
    return body


def _accepted_task(data: dict[str, Any], response: httpx2.Response) -> TaskSnapshot:
    """The task a submit created, or an unknown outcome when the answer names no usable task id.

    A success answer without an id is not a task we can follow, but APIMP may have created (and
    billed) one: it is kept as a receipt, never reported as submitted with an empty id.
    """
    snapshot = TaskSnapshot.from_wire(data)
    if re.fullmatch(TASK_ID_PATTERN, snapshot.task_id) is None:
        raise SubmitOutcomeUnknownError(
            f"APIMP answered the submit with HTTP {response.status_code} but no usable task id "
            f"({_excerpt(response)}). {_MAY_EXIST}"
        )
    return snapshot


def _without_credentials(url: str) -> str:
    """A URL fit for a message: any user name and password in it are left out."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


def _excerpt(response: httpx2.Response) -> str:
    text = response.text.strip()
    return repr(text[:200]) if text else "an empty body"


def _error_for(status: int, message: str, response: httpx2.Response, task_id: str | None) -> ApimpError:
    error_type = _error_type(response)
    if status in (401, 403):
        return AuthenticationError(status, message, error_type=error_type)
    if status == 404 and task_id is not None:
        return TaskNotFoundError(task_id, message)
    if status == 429:
        retry_after = parse_retry_after(
            response.headers.get("retry-after"), response.headers.get("retry-after-ms")
        )
        return RateLimitedError(message, retry_after_seconds=retry_after)
    if status >= 500:
        return UpstreamServerError(status, message, error_type=error_type)
    if status in (400, 422):
        return UpstreamRejectedError(status, message, error_type=error_type)
    return UpstreamError(status, message, error_type=error_type)


def _json_or_none(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error_message(response: httpx2.Response) -> str:
    """APIMP's own words when it gave any (`error.message`, or `detail` on the upload API)."""
    body = _json_or_none(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("detail", "message", "msg"):
            if isinstance(body.get(key), str):
                return str(body[key])
        if isinstance(body.get("detail"), list):  # a validation error, FastAPI style
            return "; ".join(_validation_problem(item) for item in body["detail"])
    text = response.text.strip()
    return text[:500] if text else (response.reason_phrase or "no message")


def _validation_problem(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    location = ".".join(str(part) for part in item.get("loc") or ())
    message = str(item.get("msg") or "invalid")
    return f"{location}: {message}" if location else message


def _error_type(response: httpx2.Response) -> str | None:
    body = _json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None
