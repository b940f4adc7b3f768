"""MCP resources: the task journal and the model catalog, as JSON a host can show or attach.

apimp://tasks              the newest tasks in the journal
apimp://tasks/{task_id}    one task, with every status change seen
apimp://models             each model's documented fields and limits, and the price table

Tasks are the caller's own: another principal's task reads exactly like one that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Final

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from apimp_video_mcp.catalog import MODEL_SPECS
from apimp_video_mcp.costs.pricing import PriceTable, estimate
from apimp_video_mcp.models import VeoMetadata, VideoInput
from apimp_video_mcp.server.auth import current_principal
from apimp_video_mcp.service import VideoService

RECENT_TASKS_IN_RESOURCE: Final = 50
JSON: Final = "application/json"


def model_catalog(prices: PriceTable) -> dict[str, Any]:
    """The catalog as data: each model's limits and estimated prices, and the request fields."""
    return {
        "models": [
            {
                **asdict(spec),
                "supports_4k": "4k" in spec.resolutions,
                "estimated_cost": {
                    resolution: estimate(
                        prices,
                        spec.model_id,
                        seconds=spec.default_duration_seconds,
                        resolution=resolution,
                        audio=True,
                    ).amount
                    for resolution in spec.resolutions
                },
            }
            for spec in MODEL_SPECS.values()
        ],
        "prices": {
            "note": "Estimates, not the bill: APIMP bills in its own units. estimated_cost above is a clip "
            "of the model's default length, with audio, at each resolution.",
            **prices.model_dump(mode="json"),
        },
        "input_fields": _describe(VideoInput.model_json_schema(by_alias=True)),
        "metadata_fields": _describe(VeoMetadata.model_json_schema(by_alias=True)),
    }


def _describe(schema: dict[str, Any]) -> dict[str, str]:
    return {name: str(field.get("description", "")) for name, field in schema["properties"].items()}


def register_resources(server: MCPServer[Any], service: Callable[[], VideoService]) -> None:
    """Add the resources; `service` gives the running service (static resources get no context)."""

    @server.resource(
        "apimp://tasks",
        name="tasks",
        title="Recent video tasks",
        description=f"The newest {RECENT_TASKS_IN_RESOURCE} tasks in the task journal, newest first, with "
        "each one's estimated cost and the estimated spend of today and this month.",
        mime_type=JSON,
    )
    async def recent_tasks() -> str:
        listing = await service().list_tasks(limit=RECENT_TASKS_IN_RESOURCE, principal=current_principal())
        return listing.model_dump_json(indent=2)

    @server.resource(
        "apimp://tasks/{task_id}",
        name="task",
        title="One video task",
        description="Everything the journal knows of one task, with every status change seen.",
        mime_type=JSON,
    )
    async def one_task(task_id: str) -> str:
        principal = current_principal()
        entry = await service().journal.get(task_id, principal=principal.id, with_events=True)
        if entry is None:
            raise ResourceNotFoundError(f"The task journal has no task {task_id!r}.")
        return entry.model_dump_json(indent=2)

    @server.resource(
        "apimp://models",
        name="models",
        title="Video model catalog",
        description="Each video model's documented durations and resolutions, its estimated price, the "
        "price table, and the request fields.",
        mime_type=JSON,
    )
    def models() -> str:
        return json.dumps(model_catalog(service().settings.price_table), indent=2)
