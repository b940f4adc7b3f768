"""The failures this package raises on purpose, each with a message a model can act on.

    ApimpError                      base: str(error) is written for the model to read
    ├── ConfigurationError          the server is set up wrong (no APIMP_API_KEY, a bad variable)
    ├── InvalidRequestError         our own check refused the input; nothing was sent
    │   └── LocalFileError          a local image was refused (outside the allowed folders, ...)
    ├── UpstreamError               APIMP answered with an error status
    │   ├── UpstreamRejectedError   400: APIMP's message, verbatim
    │   ├── AuthenticationError     401/403: the key is wrong or the task is someone else's
    │   ├── TaskNotFoundError       404: APIMP does not know the task id
    │   ├── RateLimitedError        429: slow down, with the Retry-After when APIMP sent one
    │   └── UpstreamServerError     5xx: APIMP is having trouble
    ├── UnknownTaskError            the caller has no such task here (none, or another principal's)
    ├── LimitExceededError          the caller's principal is at one of its limits; nothing was sent
    ├── UpstreamUnreachableError    no answer at all: connection refused, timed out, dropped
    ├── SubmitOutcomeUnknownError   a submit went out and no clear answer came back
    ├── DownloadError               a finished video could not be saved (why: `reason`)
    │   └── RefusedAddressError     its URL leads to a loopback, private or link-local address
    ├── JournalUnavailableError     the task journal refused the request's record; nothing was sent
    ├── VideoUnavailableError       the player view cannot be given a video's bytes (why: `reason`)
    ├── UploadFailedError           a local image was not uploaded; a submit needing it was not sent
    └── SpendingRefusedError        the price stopped a submit before anything was sent
        ├── OverMaxCostError        the estimate exceeds the call's max_cost
        ├── OverBudgetError         the estimate would break the daily or monthly budget
        ├── ConfirmationRequiredError  above the threshold, and nobody could be asked
        └── NotApprovedError        the person declined or cancelled the confirmation

A task that fails upstream is not an error here: it is a status (`failed`) with a message,
reported as data. Errors mean the API or our setup failed, not the generation.
"""

from __future__ import annotations

from typing import Final, Literal


class ApimpError(Exception):
    """Base of every failure raised on purpose by this package."""


class ConfigurationError(ApimpError):
    """The server's configuration prevents the call (typically: no API key)."""


class InvalidRequestError(ApimpError):
    """The input breaks a documented rule; refused before any request (and any credit) was spent."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"Invalid {field}: {problem}")


class LocalFileError(InvalidRequestError):
    """A local file was refused by a safety rule; no byte of it was sent anywhere.

    The message names the path as given and the rule it broke, so the model can fix the call
    (move the image under an allowed folder, convert it, shrink it, or pass a URL instead).
    """

    def __init__(self, field: str, source: str, rule: str) -> None:
        self.source = source
        self.rule = rule
        super().__init__(field, f"cannot use the local file {source!r}: {rule}")


class UpstreamError(ApimpError):
    """APIMP answered with an error; its message is kept intact for the model."""

    def __init__(self, status_code: int, message: str, *, error_type: str | None = None) -> None:
        self.status_code = status_code
        self.upstream_message = message
        self.error_type = error_type
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"APIMP returned HTTP {self.status_code}: {self.upstream_message}"


class UpstreamRejectedError(UpstreamError):
    """APIMP refused the request as invalid (400)."""

    def describe(self) -> str:
        return f"APIMP rejected the request: {self.upstream_message}"


class AuthenticationError(UpstreamError):
    """The key was refused (401) or lacks access to the task (403). Never carries the key."""

    def describe(self) -> str:
        if self.status_code == 403:
            return (
                f"APIMP refused access (HTTP 403: {self.upstream_message}). The task may belong to "
                "another API key; check that APIMP_API_KEY is the key that submitted it."
            )
        return (
            f"APIMP did not accept the API key (HTTP {self.status_code}: {self.upstream_message}). "
            "Check APIMP_API_KEY in the MCP server's environment (or, on a server where each caller "
            "brings their own APIMP key, the key your client sends as its bearer token)."
        )


class TaskNotFoundError(UpstreamError):
    """The task id is unknown to APIMP."""

    def __init__(self, task_id: str, message: str) -> None:
        self.task_id = task_id
        super().__init__(404, message)

    def describe(self) -> str:
        return (
            f"APIMP does not know task {self.task_id!r} ({self.upstream_message}). Check the id: "
            "use the task_id returned by submit_video, e.g. 'task_...'."
        )


class RateLimitedError(UpstreamError):
    """APIMP asked us to slow down; retries are exhausted or the wait it asked for is too long."""

    def __init__(self, message: str, *, retry_after_seconds: float | None) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(429, message)

    def describe(self) -> str:
        wait = (
            f"wait {self.retry_after_seconds:g} s"
            if self.retry_after_seconds is not None
            else "wait a little"
        )
        return f"APIMP is rate limiting requests (HTTP 429: {self.upstream_message}); {wait} and try again."


class UpstreamServerError(UpstreamError):
    """APIMP failed on its side (5xx) and retries did not help."""

    def describe(self) -> str:
        return (
            f"APIMP had a server error (HTTP {self.status_code}: {self.upstream_message}). "
            "This is usually temporary; try again shortly."
        )


class AnswerTooLargeError(UpstreamServerError):
    """APIMP's answer ran past the size any documented answer has; the rest was never read."""

    def __init__(self, status_code: int, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(status_code, f"an answer of more than {max_bytes} bytes")

    def describe(self) -> str:
        return (
            f"APIMP answered (HTTP {self.status_code}) with more than {self.max_bytes} bytes, far more "
            "than any answer it documents, so it was cut off unread. Try again shortly."
        )


class UnknownTaskError(ApimpError):
    """The caller's journal has no such task: it never existed, or it is another principal's.

    Both cases give this same message, so a task id reveals nothing about anyone else's tasks.
    """

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"There is no task {task_id!r} among your tasks on this server. Check the id: use the "
            "task_id returned by submit_video; list_tasks lists your tasks."
        )


class LimitExceededError(ApimpError):
    """The principal is at one of its limits; the call was refused before any request to APIMP.

    The message names the limit, its value and when it frees up, so the model can tell the user
    or come back later instead of retrying at once.
    """

    def __init__(self, limit: str, value: int, frees_up: str) -> None:
        self.limit = limit
        self.value = value
        super().__init__(
            f"Refused: you are at your limit of {value} {limit}; nothing was submitted or charged. {frees_up}"
        )


class UpstreamUnreachableError(ApimpError):
    """No HTTP answer came back (connection refused, timed out, or dropped)."""


class SubmitOutcomeUnknownError(ApimpError):
    """The submit request was sent, but whether APIMP created (and billed) a task is unknown.

    It is never resubmitted automatically: a second submit could pay for a second video.
    """


class JournalUnavailableError(ApimpError):
    """The task journal could not be read or written where the answer depends on it.

    A submit it cannot record first is not sent; a task it cannot look up is not asked about."""


DownloadFailure = Literal["expired", "too_large", "failed"]


class DownloadError(ApimpError):
    """A finished video could not be downloaded; its URL is still reported to the caller.

    `reason` says why for code that acts on it (the player view tells an expired link apart).
    """

    def __init__(self, message: str, *, reason: DownloadFailure = "failed") -> None:
        self.reason: DownloadFailure = reason
        super().__init__(message)


class RefusedAddressError(DownloadError):
    """A result URL (or a redirect) leads to an address on the machine's own networks: nothing was fetched.

    Raised where the connection would be opened, so it names the address actually resolved.
    """

    def __init__(self, host: str, port: int, address: str, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        shown = f"[{host}]" if ":" in host else host
        super().__init__(
            f"refused to fetch the video from {host} ({address}): a {kind} address, not a public one, so "
            "nothing was requested. If this host is yours and trusted, the server's operator can allow it "
            f"with APIMP_DOWNLOAD_ALLOWED_HOSTS={shown}:{port}"
        )


class VideoUnavailableError(ApimpError):
    """The player view asked for a video's bytes and cannot have them.

    `reason` is one of unknown_task, not_finished, too_large, expired, saving, download_failed; the
    message carries it in parentheses, the one part of it the view reads.
    """

    def __init__(self, task_id: str, reason: str, detail: str) -> None:
        self.task_id = task_id
        self.reason = reason
        super().__init__(f"Cannot serve the video of task {task_id} ({reason}): {detail}.")


class UploadFailedError(ApimpError):
    """APIMP did not take a local image; when a submit needed it, the video was not submitted."""

    def __init__(self, source: str, cause: str, *, submitting: bool) -> None:
        self.source = source
        outcome = (
            " The video was NOT submitted and nothing was charged; fix the cause and call submit_video again."
            if submitting
            else ""
        )
        super().__init__(f"Uploading the local image {source!r} to APIMP failed: {cause}{outcome}")


class SpendingRefusedError(ApimpError):
    """A submit stopped by its price before any request (an upload included) was sent; nothing was charged."""


class OverMaxCostError(SpendingRefusedError):
    """The estimate exceeds the max_cost the caller set."""


class OverBudgetError(SpendingRefusedError):
    """The estimate would take the day's or the month's estimated spend past its budget."""


class ConfirmationRequiredError(SpendingRefusedError):
    """Above the confirmation threshold, and the client cannot ask the person (no elicitation)."""


class NotApprovedError(SpendingRefusedError):
    """The person was asked and did not approve (declined or cancelled)."""


# Failures that say nothing about the task itself: asking again later may well succeed. A poller
# rides them out, backing off; the player view shows the last known status and asks again.
TRANSIENT_ERRORS: Final = (UpstreamServerError, UpstreamUnreachableError, RateLimitedError)
