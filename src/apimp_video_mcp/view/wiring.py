"""The live player view, wired into MCP Apps (the `io.modelcontextprotocol/ui` extension).

A host that renders MCP Apps shows `ui://apimp-video/player.html` beside submit_video,
get_status and wait_for_video: the model, prompt and task id, a progress bar while the task
runs (the view polls the app-only tool poll_video_status, a few seconds apart), then the video
itself, with "open in browser" and the path of the saved copy. A host without the extension sees
exactly what it saw before: the same tools, text and structured content; the view's own tool is
not even listed to it (nothing there would keep it from the model). APIMP_UI=off removes it all.

Playing a video inside a host's sandbox depends on its Content-Security-Policy: the page may load
media only from the origins its resource declares in `_meta.ui.csp.resourceDomains`, and some
hosts honour no declared origin at all. So the view tries three sources in turn:

1. the result URL itself, which plays when its origin is declared and the host honours it;
2. `apimp://videos/{task_id}` through resources/read: the saved copy's bytes as a base64 blob,
   played as a `data:` URI (allowed by every host's default policy), up to
   `APIMP_UI_VIDEO_MAX_BYTES`;
3. "open in browser" (`ui/open-link`).

The declared origins are APIMP_UI_MEDIA_DOMAINS, the origin of APIMP_BASE_URL and the origins of
result files seen in the journal's recent finished tasks. They are computed each time the page is
read (the `_meta` of a resources/read result is what hosts enforce), but hosts read the page once
and may cache it for the connection: an origin first seen during a conversation is declared from
the next time the host reads the page (usually a new conversation or a reconnect). Until then,
step 2 plays the video; declaring the CDN in APIMP_UI_MEDIA_DOMAINS avoids the gap.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from importlib.resources import files
from typing import Annotated, Any, Final

from mcp.server import MCPServer
from mcp.server.apps import Apps, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.extension import Extension
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import Resource
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ApimpError, VideoUnavailableError
from apimp_video_mcp.models import TASK_ID_PATTERN
from apimp_video_mcp.server.auth import current_principal
from apimp_video_mcp.server.outcomes import answer, as_tool_errors
from apimp_video_mcp.service import VideoService
from apimp_video_mcp.view.player import (
    VIDEO_RESOURCE_PREFIX,
    PlayerService,
    PlayerStatus,
    configured_media_origins,
)

PLAYER_URI: Final = "ui://apimp-video/player.html"
VIDEO_URI_TEMPLATE: Final = VIDEO_RESOURCE_PREFIX + "{task_id}"
POLL_TOOL: Final = "poll_video_status"
# The tools whose calls the host shows with the player beside them.
LINKED_TOOLS: Final = frozenset({"submit_video", "get_status", "wait_for_video"})

TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, description="The task id the view shows.")]

ServiceGetter = Callable[[], VideoService]


@cache
def player_html() -> str:
    """The view: one self-contained page shipped in the package (no CDN, no build step)."""
    return (files("apimp_video_mcp.view") / "ui" / "player.html").read_text(encoding="utf-8")


def ui_meta(origins: Sequence[str]) -> dict[str, Any]:
    """The page's `_meta.ui`: the media origins to allow, and a request for the host's border."""
    return {"csp": {"resourceDomains": list(origins)}, "prefersBorder": True}


class PlayerResource(Resource):
    """The view's HTML, whose declared media origins are recomputed each time a host reads it.

    The SDK copies `meta` into the resources/read result right after `read()` returns (with no
    await in between), so setting it in `read()` is what the host receives; a test pins this.
    """

    html: str
    origins: Callable[[], Awaitable[list[str]]] = Field(exclude=True)

    async def read(self) -> str:
        self.meta = {"ui": ui_meta(await self.origins())}
        return self.html


class HideFromPlainClients:
    """Keeps what only the view uses out of the lists a client without MCP Apps receives.

    Such a client filters nothing by visibility, so the view's own tool would reach the model; and
    the page and the video template are of no use to it. Its tools/list, resources/list and
    resources/templates/list stay exactly as they were before the view existed.
    """

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        listing = _LISTINGS.get(ctx.method)
        if listing is None or client_supports_apps(ctx):
            return result
        key, keep = listing
        if isinstance(result, BaseModel):
            result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        if isinstance(result, dict) and isinstance(result.get(key), list):
            return {**result, key: [item for item in result[key] if keep(item)]}
        return result


def _model_visible(tool: dict[str, Any]) -> bool:
    ui = (tool.get("_meta") or {}).get("ui")
    visibility = ui.get("visibility") if isinstance(ui, dict) else None
    return not isinstance(visibility, list) or "model" in visibility


_LISTINGS: Final[dict[str, tuple[str, Callable[[dict[str, Any]], bool]]]] = {
    "tools/list": ("tools", _model_visible),
    "resources/list": ("resources", lambda resource: not str(resource.get("uri")).startswith("ui://")),
    "resources/templates/list": (
        "resourceTemplates",
        lambda template: template.get("uriTemplate") != VIDEO_URI_TEMPLATE,
    ),
}


class PlayerApp:
    """Everything the view adds to the server, or nothing at all when APIMP_UI=off.

    `service` gives the running service (the SDK hands static resources and extension tools no
    lifespan context). The server passes its tools through `link`, its constructor takes
    `extensions` and `middleware`, and `register` adds the video resource template.
    """

    def __init__(self, settings: Settings, service: ServiceGetter) -> None:
        self.enabled = settings.ui_enabled
        self._settings = settings
        self._service = service
        self._apps = Apps()
        if not self.enabled:
            return
        self._apps.add_resource(
            PlayerResource(
                uri=PLAYER_URI,
                name="player",
                title="Video player",
                description="Live view of a video task: progress while it renders, the video when done.",
                html=player_html(),
                origins=self._media_origins,
                meta={"ui": ui_meta(configured_media_origins(settings))},
            )
        )

        async def poll_video_status(task_id: TaskId) -> Annotated[CallToolResult, PlayerStatus]:
            """For the video player view: a task's status now, in one short call, and when to ask again.

            At most one APIMP status query; a slow or failing APIMP gives the last known status with
            last_error. Agents: use wait_for_video instead.
            """
            with as_tool_errors():
                player = PlayerService(self._service(), principal=current_principal())
                status = await player.status(task_id)
            return answer(status)

        self._apps.tool(
            resource_uri=PLAYER_URI,
            visibility=["app"],
            name=POLL_TOOL,
            title="Video player: poll a task",
            annotations=ToolAnnotations(
                title="Video player: poll a task",
                read_only_hint=True,
                destructive_hint=False,
                idempotent_hint=True,
                open_world_hint=True,
            ),
        )(poll_video_status)

    @property
    def extensions(self) -> list[Extension]:
        return [self._apps] if self.enabled else []

    @property
    def middleware(self) -> list[ServerMiddleware[Any]]:
        return [HideFromPlainClients()] if self.enabled else []

    def link(self, tools: Sequence[Tool]) -> list[Tool]:
        """The tools, those the view accompanies carrying `_meta.ui.resourceUri`."""
        if not self.enabled:
            return list(tools)
        return [
            tool.model_copy(update={"meta": {**(tool.meta or {}), "ui": {"resourceUri": PLAYER_URI}}})
            if tool.name in LINKED_TOOLS
            else tool
            for tool in tools
        ]

    def register(self, server: MCPServer[Any]) -> None:
        """Add `apimp://videos/{task_id}`: a finished video's bytes, for the view's fallback."""
        if not self.enabled:
            return

        @server.resource(
            VIDEO_URI_TEMPLATE,
            name="video",
            title="A finished video",
            description="The saved MP4 of a finished task, base64 in a blob (at most "
            f"{self._settings.ui_video_max_bytes // (1024 * 1024)} MiB): for the player view when the "
            "host's policy blocks the result URL.",
            mime_type="video/mp4",
        )
        async def video(task_id: str) -> bytes:
            if not _valid_task_id(task_id):
                raise ResourceNotFoundError(f"{task_id!r} is not a task id.")
            try:
                player = PlayerService(self._service(), principal=current_principal())
                return await player.video_bytes(task_id)
            except VideoUnavailableError as exc:
                raise ResourceError(str(exc)) from exc
            except ApimpError as exc:
                raise ResourceError(f"Cannot serve the video of task {task_id}: {exc}") from exc

    async def _media_origins(self) -> list[str]:
        try:
            service = self._service()
        except RuntimeError:  # read outside the server's lifetime: what is configured is all we know
            return configured_media_origins(self._settings)
        return await PlayerService(service, principal=current_principal()).media_origins()


def _valid_task_id(task_id: str) -> bool:
    return re.fullmatch(TASK_ID_PATTERN, task_id) is not None
