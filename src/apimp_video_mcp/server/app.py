"""The MCP face of the service: tool adapters, their schemas and the server's lifetime.

Each tool only translates: arguments in, one `VideoService` call, a structured result and a
readable summary out, and our errors into tool errors the model can read. The service, its
HTTP client and its connection pool live exactly as long as the server (the lifespan).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Annotated, Any, Final

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.request_state import RequestStateSecurity
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from apimp_video_mcp import defaults
from apimp_video_mcp.config import LogLevel, Settings
from apimp_video_mcp.local_files import LocalFilePolicy, Transport
from apimp_video_mcp.models import TASK_ID_PATTERN, ImageReference, ModelChoice, SubmitRequest, VideoInput
from apimp_video_mcp.polling.pollers import Clock
from apimp_video_mcp.results import CostQuote, SubmitResult, TaskList, TaskReport, UploadResult, WaitResult
from apimp_video_mcp.server.access_log import access_log
from apimp_video_mcp.server.auth import AuthSetup, build_auth, current_principal
from apimp_video_mcp.server.confirmation import Approval, approved
from apimp_video_mcp.server.health import register_health
from apimp_video_mcp.server.http import check_bind, serve_http
from apimp_video_mcp.server.outcomes import answer, as_tool_errors
from apimp_video_mcp.server.resources import register_resources
from apimp_video_mcp.server.schema import publishable_input_schema
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.store import EntryStatus, TaskStore, task_store_for
from apimp_video_mcp.upstream.client import ApimpClient, SharedHttpClient
from apimp_video_mcp.upstream.retry import RetryPolicy
from apimp_video_mcp.view.wiring import PlayerApp

SERVER_NAME: Final = "apimp-video-mcp"

INSTRUCTIONS: Final = """\
Generate videos with Google Veo 3 through APIMP.
Workflow: submit_video creates a task and returns its task_id at once; then call wait_for_video
with that task_id. wait_for_video returns when the video is ready, or after its timeout with the
current status: a timeout is not a failure, call wait_for_video again. Finished videos are saved
locally (result URLs may expire). get_status checks a task once without waiting.
For image-to-video, input.image takes an image URL or a local image path (uploaded for you);
upload_image uploads a local image on its own and returns its URL.
Each submitted task costs money: do not resubmit a task that is merely still running.
estimate_cost prices a request without sending it; submit_video's result carries the estimate
and the spend of today and this month. Expensive requests are confirmed by the user: the server
asks them itself when the client can show its question; otherwise ask the user, and resend with
max_cost covering the estimate only once they agree."""

TaskId = Annotated[
    str,
    Field(
        pattern=TASK_ID_PATTERN,
        description="The task id returned by submit_video, e.g. 'task_abc123'.",
    ),
]


@dataclass(frozen=True)
class AppContext:
    """What lives for the server's lifetime."""

    service: VideoService


@dataclass
class RunningService:
    """The service while the server runs, for handlers the SDK gives no context (static resources)."""

    service: VideoService | None = None

    def get(self) -> VideoService:
        if self.service is None:
            raise RuntimeError("the server is not running")
        return self.service


Model = Annotated[ModelChoice, Field(description="The video model. veo-3.1 models can also render 4k.")]
MaxCost = Annotated[
    float | None,
    Field(
        ge=0,
        description="The most this video may cost, in the server's price currency (estimate_cost shows the "
        "estimate and the currency). A request estimated above it is refused before anything is sent. "
        "Never sent to APIMP. Set it only to an amount the user agreed to pay.",
    ),
]


def _service(ctx: Context[AppContext, Any]) -> VideoService:
    return ctx.request_context.lifespan_context.service


async def submit_video(
    model: Model,
    input: VideoInput,  # the APIMP field's name: the arguments ARE the request body
    ctx: Context[AppContext, Any],
    approval: Approval,
    max_cost: MaxCost = None,
) -> Annotated[CallToolResult, SubmitResult]:
    """Start generating a video with Google Veo 3 through APIMP. Costs money.

    Returns a task_id at once, with the estimated price; the video itself takes from tens of seconds
    to minutes. Then call wait_for_video with the task_id. model and input are sent to APIMP exactly
    as given. Expensive requests are confirmed by the user first (see estimate_cost).
    """
    with as_tool_errors():
        service = _service(ctx)
        request = SubmitRequest(model=model, input=input)
        consent = approved(approval, service.estimate(request))
        return answer(
            await service.submit(request, principal=current_principal(), max_cost=max_cost, approved=consent)
        )


async def estimate_cost(
    model: Model,
    input: VideoInput,
    ctx: Context[AppContext, Any],
    max_cost: MaxCost = None,
) -> Annotated[CallToolResult, CostQuote]:
    """Estimate what submit_video would cost for exactly these arguments, without submitting anything.

    Applies every check submit_video applies (the model's rules, local image files, max_cost, the
    daily and monthly budgets) and says whether it would send the request, refuse it, or ask the user
    to approve the price. The figures are estimates from the server's price table; APIMP bills the
    real amount.
    """
    with as_tool_errors():
        request = SubmitRequest(model=model, input=input)
        return answer(await _service(ctx).quote(request, principal=current_principal(), max_cost=max_cost))


async def upload_image(
    path: Annotated[
        ImageReference,
        Field(
            description="The image file on the machine running this server: an absolute path, ~/..., a "
            "path relative to the server's working directory, or a file:// URL. PNG, JPEG, WebP or GIF, "
            "inside the folders the server allows (APIMP_UPLOAD_ROOTS)."
        ),
    ],
    ctx: Context[AppContext, Any],
) -> Annotated[CallToolResult, UploadResult]:
    """Upload a local image to APIMP and return its hosted URL, expiry, size and MIME type.

    Use the URL as input.image of submit_video (image-to-video). submit_video also accepts the local
    path itself and uploads it for you, so call this only to get the URL first. Uploads expire after
    72 h. A server reached over HTTP reads no local file unless its operator allowed folders.
    """
    with as_tool_errors():
        return answer(await _service(ctx).upload_image(path, principal=current_principal()))


async def get_status(
    task_id: TaskId,
    ctx: Context[AppContext, Any],
    refresh: Annotated[
        bool,
        Field(
            description="Ask APIMP now: even when the journal already knows the task has ended, and "
            "without reusing the answer concurrent calls shared in the last second."
        ),
    ] = False,
) -> Annotated[CallToolResult, TaskReport]:
    """Check a video task once, without waiting: status, progress, video URLs or the error message.

    A task that has finished or failed is answered from the local task journal. To wait for the
    result, use wait_for_video instead of calling this in a loop.
    """
    with as_tool_errors():
        return answer(await _service(ctx).get_status(task_id, refresh=refresh, principal=current_principal()))


async def list_tasks(
    ctx: Context[AppContext, Any],
    status: Annotated[
        EntryStatus | None,
        Field(description="Only tasks with this status. submit_outcome_unknown: sent, but no clear answer."),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="How many tasks at most.")] = 20,
) -> Annotated[CallToolResult, TaskList]:
    """List the video tasks this server has submitted or seen, newest first, from its durable journal.

    Use it to find a task whose id was lost (a new conversation, a restarted host) before paying for
    a new one: an unfinished task can be waited for again with wait_for_video.
    """
    with as_tool_errors():
        return answer(
            await _service(ctx).list_tasks(status=status, limit=limit, principal=current_principal())
        )


async def wait_for_video(
    task_id: TaskId,
    ctx: Context[AppContext, Any],
    timeout_seconds: Annotated[
        float | None,
        Field(
            gt=0,
            le=defaults.MAX_WAIT_TIMEOUT_SECONDS,
            description="How long to wait at most, in seconds. Default: the server's APIMP_WAIT_TIMEOUT "
            f"({defaults.DEFAULT_WAIT_TIMEOUT_SECONDS:g} s unless configured), which fits hosts that end "
            "tool calls after 60 s. Ask for longer only if your host allows long tool calls.",
        ),
    ] = None,
    download: Annotated[
        bool,
        Field(description="Save finished videos on the server's machine and return their paths."),
    ] = True,
) -> Annotated[CallToolResult, WaitResult]:
    """Wait for a video task to finish, reporting progress; then return its video URLs and saved files.

    If the timeout passes first, this returns the task's current status with timed_out=true: that is
    not a failure, call wait_for_video again with the same task_id. A failed task returns its error
    message. Result URLs may expire, so keep download on.
    """

    async def report(progress: float, message: str) -> None:
        await ctx.report_progress(progress, 100, message)

    with as_tool_errors():
        result = await _service(ctx).wait(
            task_id,
            timeout_seconds=timeout_seconds,
            download=download,
            report=report,
            principal=current_principal(),
        )
        return answer(result)


def _tool(fn: Callable[..., Any], *, title: str, read_only: bool) -> Tool:
    tool = Tool.from_function(
        fn,
        title=title,
        annotations=ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=False,
            idempotent_hint=read_only,
            open_world_hint=True,
        ),
    )
    tool.parameters = publishable_input_schema(tool.parameters)
    return tool


def build_tools() -> list[Tool]:
    return [
        _tool(submit_video, title="Submit a video generation task", read_only=False),
        _tool(estimate_cost, title="Estimate the cost of a video", read_only=True),
        _tool(get_status, title="Check a video task", read_only=True),
        _tool(wait_for_video, title="Wait for a video", read_only=True),
        _tool(list_tasks, title="List video tasks", read_only=True),
        _tool(upload_image, title="Upload a local image", read_only=False),
    ]


def build_server(
    settings: Settings | None = None,
    *,
    log_level: LogLevel = "WARNING",
    transport: Transport | None = None,
    clock: Clock | None = None,
    store: TaskStore | None = None,
    auth: AuthSetup | None = None,
) -> MCPServer[AppContext]:
    """A ready server; `settings` default to the environment (`APIMP_*` variables).

    `clock` replaces real time for polling and waits (benchmarks run a simulator many times faster).
    `store` replaces the journal the settings name (the server closes it when it stops).
    `auth` makes streamable HTTP require a bearer token (see `server.auth.build_auth`).

    `log_level` also sets the HTTP transport's access log, which is noise at the default level.
    `transport` is how the server will be reached; unless APIMP_UPLOAD_ROOTS says otherwise it decides
    which local images may be uploaded: stdio allows the working directory and home, streamable HTTP
    (or None: an embedder that does not say) allows none.
    """
    resolved = settings if settings is not None else Settings.from_env()
    local_files = LocalFilePolicy.for_transport(
        resolved.upload_roots, transport, max_bytes=resolved.upload_max_bytes
    )

    running = RunningService()
    access = access_log(resolved.access_log)  # one JSON line per tool call, when APIMP_ACCESS_LOG asks
    player = PlayerApp(resolved, running.get)  # the live view for MCP Apps hosts; nothing if APIMP_UI=off

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        # Both open on first use, so the host gets its tool list without waiting for them.
        journal = (
            store
            if store is not None
            else task_store_for(resolved.journal_path, pool_size=resolved.postgres_pool_size)
        )
        http = SharedHttpClient(resolved.base_url, request_timeout_seconds=resolved.request_timeout_seconds)
        policy = RetryPolicy(
            max_attempts=resolved.retry_max_attempts, base_delay_seconds=resolved.retry_base_delay_seconds
        )
        client = ApimpClient(http.client, resolved.require_api_key, retry_policy=policy)
        service = VideoService(resolved, client, journal, local_files=local_files, clock=clock)
        try:
            async with service.running():
                running.service = service
                yield AppContext(service=service)
        finally:
            running.service = None
            with anyio.CancelScope(shield=True):
                await http.aclose()
                await journal.close()

    server = MCPServer(
        SERVER_NAME,
        title="APIMP Video",
        instructions=INSTRUCTIONS,
        version=version("apimp-video-mcp"),
        tools=player.link(build_tools()),
        extensions=player.extensions,
        middleware=[*player.middleware, *([access] if access is not None else [])],
        lifespan=lifespan,
        log_level=log_level,
        token_verifier=auth.verifier if auth is not None else None,
        auth=auth.settings if auth is not None else None,
        request_state_security=request_state_security(resolved),
    )
    register_resources(server, running.get)
    register_health(server, running.get)
    player.register(server)
    return server


def request_state_security(settings: Settings) -> RequestStateSecurity | None:
    """The keys every instance of a cluster seals requestState with; None: the SDK's per-process key."""
    if settings.request_state_keys is None:
        return None
    return RequestStateSecurity(
        keys=[key.strip() for key in settings.request_state_keys.get_secret_value().split(",")]
    )


__all__ = ["AppContext", "build_server", "build_tools"]


async def serve(
    settings: Settings,
    *,
    log_level: LogLevel,
    transport: Transport,
    host: str,
    port: int,
    allow_unauthenticated: bool = False,
) -> None:
    """Build the server and run it on one transport until the host ends it.

    Over streamable HTTP, APIMP_AUTH decides who may call (refusing an open non-loopback bind
    unless `allow_unauthenticated`), and Host/Origin are checked whatever the address.
    """
    if transport == "stdio":
        await build_server(settings, log_level=log_level, transport=transport).run_stdio_async()
        return
    check_bind(host, settings, allow_unauthenticated=allow_unauthenticated)
    auth = build_auth(settings, base_url=f"http://{host}:{port}")
    server = build_server(settings, log_level=log_level, transport=transport, auth=auth)
    await serve_http(server, settings, host=host, port=port, log_level=log_level)
