"""How a tool's outcome reaches the model, for every tool of the server.

A result goes out as structured content (checked against the tool's output schema) with its
readable summary as the text. A failure we foresaw goes out as a tool error whose text is our
message, intact: in SDK v2 any other exception reaches the model only as "Error executing tool".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from apimp_video_mcp.errors import ApimpError


class SummarizedResult(Protocol):
    """A pydantic result that can say what it means in a few lines."""

    def summary(self) -> str: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


def answer(result: SummarizedResult) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=result.summary())],
        structured_content=result.model_dump(mode="json"),
    )


@contextmanager
def as_tool_errors() -> Iterator[None]:
    """Our errors carry messages written for the model; ToolError is how they reach it intact."""
    try:
        yield
    except ApimpError as exc:
        raise ToolError(str(exc)) from exc
