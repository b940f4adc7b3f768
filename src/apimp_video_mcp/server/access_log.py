"""The optional access log (APIMP_ACCESS_LOG): one JSON line per tool call, for a team's operator.

    {"at": "2026-12-02T10:00:00.123Z", "principal": "key:alice", "tool": "submit_video",
     "task_id": "task_ab12", "outcome": "ok", "latency_ms": 412.7}

`outcome` is "ok", "tool_error" (the model got an error it can read: a refused limit, an unknown
task, APIMP's message) or "error" (the call failed otherwise). It names the principal, never a
key or token: the principal id is a name or a hash, and nothing from the request's headers or
arguments is written except the task id.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import BaseModel

from apimp_video_mcp.server.auth import current_principal

ACCESS_LOGGER: Final = "apimp_video_mcp.access"
STDERR: Final = "stderr"


class AccessLog:
    """Server middleware writing one line per tools/call to the `apimp_video_mcp.access` logger."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        started = time.perf_counter()
        outcome, result = "error", None
        try:
            result = await call_next(ctx)
            outcome = "tool_error" if _is_error(result) else "ok"
            return result
        finally:
            self.logger.info(
                json.dumps(
                    {
                        "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                        "principal": current_principal().id,
                        "tool": _tool_name(ctx.params),
                        "task_id": _task_id(ctx.params, result),
                        "outcome": outcome,
                        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                )
            )


def access_log(destination: str | None) -> AccessLog | None:
    """The middleware writing to stderr or appending to a file; None when no log is asked for."""
    if destination is None:
        return None
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # its lines are data: they do not belong in the diagnostic log
    stream: TextIO = sys.stderr
    handler: logging.Handler = (
        logging.StreamHandler(stream) if destination == STDERR else logging.FileHandler(destination)
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    for old in list(logger.handlers):  # one destination per server
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    return AccessLog(logger)


def _tool_name(params: Mapping[str, Any] | None) -> str | None:
    name = (params or {}).get("name")
    return name if isinstance(name, str) else None


def _task_id(params: Mapping[str, Any] | None, result: HandlerResult) -> str | None:
    """The task the call was about: its argument, or the id a submit returned."""
    arguments = (params or {}).get("arguments")
    if isinstance(arguments, Mapping) and isinstance(arguments.get("task_id"), str):
        return str(arguments["task_id"])[:100]
    structured = _field(result, "structuredContent")
    if isinstance(structured, Mapping) and isinstance(structured.get("task_id"), str):
        return str(structured["task_id"])
    return None


def _is_error(result: HandlerResult) -> bool:
    return _field(result, "isError") is True


def _field(result: HandlerResult, alias: str) -> Any:
    if isinstance(result, BaseModel):
        result = result.model_dump(by_alias=True)
    return result.get(alias) if isinstance(result, dict) else None
