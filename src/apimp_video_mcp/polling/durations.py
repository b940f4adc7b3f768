"""How long a model's task typically takes: learned from this server's history, else assumed.

One rule, for everyone who needs the figure. The poll schedule needs a number before progress
says more, so it takes the assumption (`catalog.generation_time`) while there is no history.
The player view shows an estimate only when it is learned, because a person can judge "the
median of your last 5 tasks of this model" but not a guess. The history is what APIMP itself
reported: `finished_time - created_time` of the same model's earlier tasks in the journal.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apimp_video_mcp import defaults
from apimp_video_mcp.catalog import SIZE_PATTERN, generation_time, resolution_for_size
from apimp_video_mcp.store import FinishedGeneration, JournalEntry, TaskStore


@dataclass(frozen=True)
class TypicalDuration:
    seconds: float
    samples: int  # how many earlier tasks `seconds` is the median of; 0 for the catalog's assumption

    @property
    def learned(self) -> bool:
        return self.samples > 0


def typical_duration(model: str | None, earlier_seconds: Sequence[float] = ()) -> TypicalDuration:
    """The median of the model's earlier generation times once there are enough of them to mean
    something (`TYPICAL_DURATION_MIN_SAMPLES`); the catalog's assumption for the model until then."""
    if len(earlier_seconds) >= defaults.TYPICAL_DURATION_MIN_SAMPLES:
        return TypicalDuration(statistics.median(earlier_seconds), len(earlier_seconds))
    return TypicalDuration(generation_time(model).typical_seconds, 0)


async def earlier_generation_seconds(journal: TaskStore, model: str | None, *, principal: str) -> list[float]:
    """Generation times of the model's recent finished tasks of one principal, from the journal."""
    if model is None:
        return []
    finished = await journal.recent(
        principal=principal, status="finished", limit=defaults.TYPICAL_DURATION_RECENT_TASKS
    )
    durations = (generation_seconds(entry) for entry in finished if entry.model == model)
    return [seconds for seconds in durations if seconds is not None]


async def learned_typical_duration(
    journal: TaskStore, model: str | None, request: Mapping[str, Any] | None
) -> TypicalDuration:
    """The typical duration the poll schedule starts from, for a task of this model and request.

    Learned from the journal's finished tasks of the same model, narrowed to the same format
    (resolution and clip length) when there are enough of those: a 4k clip takes longer than a
    720p one. The catalog's assumption until there is any history.
    """
    if model is None:
        return typical_duration(None)
    generations = await journal.finished_generations(model, limit=defaults.TYPICAL_DURATION_RECENT_TASKS)
    timed = [
        (seconds, generation_format(generation.request))
        for generation in generations
        if (seconds := generation_seconds(generation)) is not None
    ]
    wanted = generation_format(request)
    same_format = [seconds for seconds, format_ in timed if format_ == wanted]
    if len(same_format) >= defaults.TYPICAL_DURATION_MIN_SAMPLES:
        return typical_duration(model, same_format)
    return typical_duration(model, [seconds for seconds, _ in timed])


def generation_format(request: Mapping[str, Any] | None) -> tuple[str | None, int | None]:
    """(resolution, clip seconds) as the request asks for them; None where it leaves them to the model."""
    inputs = request.get("input") if request else None
    if not isinstance(inputs, Mapping):
        return None, None
    metadata = inputs.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    resolution = metadata.get("resolution")
    size = inputs.get("size")
    if resolution is None and isinstance(size, str) and re.fullmatch(SIZE_PATTERN, size):
        resolution = resolution_for_size(size)
    clip = metadata.get("durationSeconds", inputs.get("duration", inputs.get("seconds")))
    return (
        str(resolution).lower() if resolution is not None else None,
        int(clip) if isinstance(clip, int | float) and not isinstance(clip, bool) else None,
    )


def generation_seconds(entry: JournalEntry | FinishedGeneration) -> float | None:
    """finished_time - created_time: both on APIMP's clock, so their difference holds in any zone."""
    created, finished = parse_time(entry.created_time), parse_time(entry.finished_time)
    if created is None or finished is None or (created.tzinfo is None) != (finished.tzinfo is None):
        return None
    seconds = (finished - created).total_seconds()
    return seconds if seconds >= 0 else None


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 time as APIMP or the journal writes it (a trailing Z accepted); None if unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
