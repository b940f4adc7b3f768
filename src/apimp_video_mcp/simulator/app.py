"""An in-memory, real-HTTP simulator of the APIMP task API (submit, status, result files, uploads).

Why it exists: the tests need an upstream that speaks HTTP exactly like APIMP (envelopes,
status codes, signed result URLs with query strings, "image" file types for videos), and a
user should be able to try the whole product with no key and no cost. Everything is kept in
memory; simulated time is read from an injectable clock so tests never sleep. The Public API's
uploads live in `simulator_uploads`; they are mounted here, recorded like every other request.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from http import HTTPStatus
from importlib.resources import files
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from apimp_video_mcp.catalog import generation_time
from apimp_video_mcp.simulator.progress import ProgressShape, progress_at
from apimp_video_mcp.simulator.uploads import UploadStore

logger = logging.getLogger(__name__)

SIMULATOR_API_KEY: Final = "sk-simulator"
MODELS: Final = (
    "veo-3.0-generate-001",
    "veo-3.0-fast-generate-001",
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
)
INPUT_KEYS: Final = frozenset({"prompt", "size", "image", "images", "duration", "seconds", "metadata"})
FAIL_AT_FRACTION: Final = 0.6  # a doomed task fails at this fraction of its duration

_SIZE = re.compile(r"([0-9]+)x([0-9]+)")
_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "invalid_request_error",
    429: "rate_limit_error",
}

_ANY_METHOD: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

Handler = Callable[[Request, bytes], Awaitable[Response]]


@cache
def sample_video() -> bytes:
    """The bundled 2 s H.264 clip served as every task's result (read once, then cached)."""
    return (files("apimp_video_mcp.simulator") / "assets" / "sample.mp4").read_bytes()


def veo_like_duration(model: str, rng: random.Random) -> float:
    """A plausible generation time in seconds for `model`, for benchmarks with realistic waits.

    APIMP publishes no figures: the assumption is the catalog's (`catalog.generation_time`), the
    same one the poll schedule starts from.
    """
    assumed = generation_time(model)
    return rng.triangular(assumed.shortest_seconds, assumed.longest_seconds, assumed.typical_seconds)


def documented_resolution(width: int, height: int) -> str:
    """The resolution APIMP's documented rule derives from a size (it uses the SHORT side)."""
    short = min(width, height)
    return "720p" if short < 1920 else "1080p" if short < 3840 else "4k"


def validate_submission(payload: Any) -> str | None:
    """Check a submit body like the gateway does; return the 400 message, or None when valid."""
    if not isinstance(payload, dict):
        return "request body must be a JSON object"
    model = payload.get("model")
    if model is None:
        return "model is required"
    if model not in MODELS:
        return f"model {json.dumps(model)} is not supported; use one of {', '.join(MODELS)}"
    inp = payload.get("input")
    if inp is None:
        return "input is required"
    if not isinstance(inp, dict):
        return "input must be an object"
    prompt = inp.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        return "input.prompt is required"
    if not isinstance(prompt, str):
        return "input.prompt must be a string"
    unknown = sorted(set(inp) - INPUT_KEYS)
    if unknown:
        return f"input.{unknown[0]} is not allowed; model-specific parameters go under input.metadata"
    size = inp.get("size")
    match = _SIZE.fullmatch(size) if isinstance(size, str) else None
    if size is not None and (match is None or 0 in (int(match[1]), int(match[2]))):
        return "input.size must be 'WxH' with positive integers, e.g. '1280x720'"
    if "image" in inp and not isinstance(inp["image"], str):
        return "input.image must be a string (an image URL)"
    images = inp.get("images")
    if images is not None and not isinstance(images, list):
        return "input.images must be a list"
    if isinstance(images, list) and len(images) > 1:
        return "input.images accepts at most 1 item"
    metadata = inp.get("metadata", {})
    if not isinstance(metadata, dict):
        return "input.metadata must be an object"
    if model.startswith("veo-3.0"):
        resolution = metadata.get("resolution")
        if resolution is None and match is not None:
            resolution = documented_resolution(int(match[1]), int(match[2]))
            if resolution == "4k":
                return f"input.size {size} maps to resolution 4k, which {model} does not support"
        if str(resolution).lower() == "4k":
            return f"input.metadata.resolution 4k is not supported by {model} (veo-3.1 models only)"
    return None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An APIMP error envelope; HTTP status and `code` agree (APIMP does not promise that)."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error")
    return JSONResponse({"code": status, "error": {"message": message, "type": kind}}, status, headers)


@dataclass
class ReceivedRequest:
    """One request as it reached the simulator, kept so tests can prove what was sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SimTask:
    """A submitted task. Its state is a pure function of the clock; nothing runs in the background."""

    task_id: str
    model: str
    body: dict[str, Any]
    api_key: str
    created_at: float  # clock() at submission
    duration: float  # simulated seconds until it finishes
    failure: str | None = None  # the error message if this task is doomed to fail
    file_token: str = ""
    ended_at: float | None = None  # clock() value when finish_now() cut it short
    shape: ProgressShape = "eased"
    fail_after_seconds: float | None = None  # a fast failure: fails this soon, whatever its duration

    @property
    def queued_for(self) -> float:
        """Simulated seconds spent in not_started: ~8% of the duration, at least a moment."""
        return min(self.duration * 0.5, max(self.duration * 0.08, 0.5))

    @property
    def terminal_after(self) -> float:
        """Simulated seconds after which the task is finished (or failed)."""
        if self.failure is None:
            return self.duration
        return (
            self.fail_after_seconds
            if self.fail_after_seconds is not None
            else self.duration * FAIL_AT_FRACTION
        )

    def finished_at(self, time_scale: float) -> float:
        """The clock() value at which the task reaches its terminal state."""
        natural = self.created_at + self.terminal_after / time_scale
        return natural if self.ended_at is None else min(natural, self.ended_at)

    def progress_at(self, now: float, time_scale: float) -> tuple[str, int]:
        """(status, progress) at clock() value `now`."""
        end = self.finished_at(time_scale)
        if now >= end and self.failure is None:
            return "finished", 100
        elapsed = (min(now, end) - self.created_at) * time_scale
        if elapsed < self.queued_for:
            status, progress = "not_started", 0
        else:
            status = "running"
            span = max(self.duration - self.queued_for, 1e-9)
            progress = progress_at(self.shape, (elapsed - self.queued_for) / span)
        return ("failed", progress) if now >= end else (status, progress)


@dataclass
class _Fault:
    path_prefix: str
    status: int
    method: str | None
    remaining: int
    retry_after: str | None
    delay_seconds: float
    body: Any


class Simulator:
    """The APIMP task API: submit, status, and public result-file links, plus test controls."""

    def __init__(
        self,
        *,
        api_keys: Sequence[str] = (SIMULATOR_API_KEY,),
        task_duration_seconds: float | Callable[[str], float] = 6.0,
        progress_shape: ProgressShape | Callable[[str], ProgressShape] = "eased",
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        fail_marker: str = "[fail]",
        seed: int | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.api_keys = frozenset(api_keys)
        self.task_duration_seconds = task_duration_seconds
        self.progress_shape = progress_shape
        self.time_scale = time_scale
        self.clock = clock
        self.fail_marker = fail_marker
        self.received: list[ReceivedRequest] = []
        self.tasks: dict[str, SimTask] = {}
        self._rng = random.Random(seed)
        self._faults: list[_Fault] = []
        self._doomed: list[tuple[str, float | None]] = []
        self._files_expired = False
        self._delays: set[anyio.CancelScope] = set()
        # Wall-clock timestamps are derived from the injected clock so they agree with it.
        self._clock_origin = clock()
        self._wall_origin = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        self.uploads = UploadStore(api_key=self._api_key, clock=clock, wall=self._wall, rng=self._rng)
        self.app = Starlette(
            routes=[
                self._route("/api/generate/submit", ("POST",), self._submit),
                self._route("/api/generate/status/{task_id}", ("GET",), self._status),
                self._route("/files/{name}", ("GET", "HEAD"), self._file),
                self._route("/api/common/upload/stream", ("POST",), self.uploads.upload_stream),
                self._route("/api/common/upload/url", ("POST",), self.uploads.upload_url),
                self._route("/uploads/{file_id}/{name}", ("GET", "HEAD"), self.uploads.serve),
                self._route("/{path:path}", (), self._no_route),
            ]
        )

    # --- test controls -------------------------------------------------------------------

    def inject_fault(
        self,
        *,
        path_prefix: str,
        status: int,
        method: str | None = None,
        times: int = 1,
        retry_after: str | None = None,
        delay_seconds: float = 0.0,
        body: Any = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (after `delay_seconds`).

        A status below 400 with no `body` means "answer normally, but slowly".
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        upper = method.upper() if method is not None else None
        self._faults.append(_Fault(path_prefix, status, upper, times, retry_after, delay_seconds, body))

    def fail_next_tasks(self, count: int, error_message: str, *, after_seconds: float | None = None) -> None:
        """The next `count` submitted tasks will end failed with `error_message`.

        They fail at 60% of their duration, or `after_seconds` (simulated) after the submit: a
        fast failure, as a content-policy rejection is, whatever the task's duration.
        """
        self._doomed.extend([(error_message, after_seconds)] * count)

    def finish_now(self, task_id: str) -> None:
        """Bring a task to its terminal state now (finished, or failed if it was doomed)."""
        task = self.tasks[task_id]
        task.ended_at = min(self.clock(), task.finished_at(self.time_scale))

    def expire_files(self) -> None:
        """Result links start answering 410 Gone, as signed URLs do once they expire."""
        self._files_expired = True

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[ReceivedRequest]:
        wanted = method.upper() if method is not None else None
        return [r for r in self.received if r.path.startswith(path_prefix) and wanted in (None, r.method)]

    def cancel_delays(self) -> None:
        """Cut every injected delay short (used at shutdown so the server stops promptly)."""
        for scope in list(self._delays):
            scope.cancel()

    # --- plumbing ------------------------------------------------------------------------

    def _route(self, path: str, methods: tuple[str, ...], handler: Handler) -> Route:
        """A route that records the request, then applies faults, then the method check."""

        async def endpoint(request: Request) -> Response:
            body, url = await request.body(), request.url
            self.received.append(
                ReceivedRequest(request.method, url.path, dict(request.headers), body, url.query)
            )
            fault = self._take_fault(request.method, url.path)
            if fault is not None and fault.delay_seconds > 0:
                with anyio.CancelScope() as scope:
                    self._delays.add(scope)
                    try:
                        await anyio.sleep(fault.delay_seconds)
                    finally:
                        self._delays.discard(scope)
            if fault is not None and (fault.body is not None or fault.status >= 400):
                response = self._fault_response(fault)
            elif methods and request.method not in methods:
                response = _error(405, f"method {request.method} not allowed on {url.path}")
            else:
                response = await handler(request, body)
            if fault is not None and fault.retry_after is not None:
                response.headers["retry-after"] = fault.retry_after
            return response

        return Route(path, endpoint, methods=_ANY_METHOD)  # checked above, after recording

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if path.startswith(fault.path_prefix) and fault.method in (None, method):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> Response:
        if isinstance(fault.body, bytes | str):
            return PlainTextResponse(fault.body, fault.status)
        if fault.body is not None:
            return JSONResponse(fault.body, fault.status)
        try:
            message = f"{HTTPStatus(fault.status).phrase} (simulated fault)"
        except ValueError:
            message = "simulated fault"
        return _error(fault.status, message)

    def _api_key(self, request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        return key if scheme.lower() == "bearer" and key in self.api_keys else None

    def _wall(self, clock_value: float) -> str:
        moment = self._wall_origin + timedelta(seconds=clock_value - self._clock_origin)
        return moment.isoformat(timespec="seconds")

    def _hex(self, bits: int) -> str:
        return f"{self._rng.getrandbits(bits):0{bits // 4}x}"

    # --- routes --------------------------------------------------------------------------

    async def _submit(self, request: Request, body: bytes) -> Response:
        api_key = self._api_key(request)
        if api_key is None:
            return _error(401, "Invalid API key")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        problem = validate_submission(payload)
        if problem is not None:
            return _error(400, problem)
        model: str = payload["model"]
        duration = self.task_duration_seconds
        duration = float(duration(model) if callable(duration) else duration)
        failure, fail_after = self._doomed.pop(0) if self._doomed else (None, None)
        if failure is None and self.fail_marker and self.fail_marker in payload["input"]["prompt"]:
            failure = f"Generation failed: the prompt contains the simulator's fail marker {self.fail_marker}"
        task_id, token = f"task_{self._hex(128)}", self._hex(96)
        task = SimTask(task_id, model, payload, api_key, self.clock(), max(duration, 0.0), failure, token)
        shape = self.progress_shape
        task.shape = shape(model) if callable(shape) else shape
        task.fail_after_seconds = fail_after
        self.tasks[task.task_id] = task
        logger.debug("simulated task %s (%s) will take %.1f s", task.task_id, model, task.duration)
        data = {
            "task_id": task.task_id,
            "status": "not_started",
            "created_time": self._wall(task.created_at),
            "error_message": None,
        }
        return JSONResponse({"code": 200, "data": data})

    async def _status(self, request: Request, body: bytes) -> Response:
        api_key = self._api_key(request)
        if api_key is None:
            return _error(401, "Invalid API key")
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return _error(404, "task not found")
        if task.api_key != api_key:
            return _error(403, "task belongs to another API key")
        status, progress = task.progress_at(self.clock(), self.time_scale)
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "status": status,
            "progress": progress,
            "created_time": self._wall(task.created_at),
            "error_message": task.failure if status == "failed" else None,
        }
        if status in ("finished", "failed"):
            data["finished_time"] = self._wall(task.finished_at(self.time_scale))
        if status == "finished":
            url = f"{str(request.base_url).rstrip('/')}/files/{task.task_id}.mp4?token={task.file_token}"
            data["files"] = [{"file_url": url, "file_type": "image"}]  # APIMP says "image" for videos
        return JSONResponse({"code": 200, "data": data})

    async def _file(self, request: Request, body: bytes) -> Response:
        """A public signed link: no Authorization, but the token must match (plain-text errors)."""
        name: str = request.path_params["name"]
        task = self.tasks.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if task is None or task.progress_at(self.clock(), self.time_scale)[0] != "finished":
            return PlainTextResponse("Not Found", 404)
        if request.query_params.get("token") != task.file_token:
            return PlainTextResponse("Forbidden: invalid or missing token", 403)
        if self._files_expired:
            return PlainTextResponse("Gone: this link has expired", 410)
        data = sample_video()
        headers = {"content-length": str(len(data)), "cache-control": "private, max-age=86400"}
        content = b"" if request.method == "HEAD" else data
        return Response(content, 200, headers, media_type="video/mp4")

    async def _no_route(self, request: Request, body: bytes) -> Response:
        return _error(404, f"no route for {request.method} {request.url.path}")
