"""What each video model accepts, which were retired, and the rule that turns `size` into a format.

APIMP documents the Veo 3 family on its own page. Rules live here as data, so the same facts
check a request, describe the model to an agent and fill the README; each fact names its source
and when it was checked. To add or retire a model, edit this module (and the price table in
`pricing`): nothing else lists the models.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

VideoModelId = Literal[
    "veo-3.0-generate-001",
    "veo-3.0-fast-generate-001",
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
]
AspectRatio = Literal["16:9", "9:16"]
Resolution = Literal["720p", "1080p", "4k"]
DurationSeconds = Literal[4, 6, 8]  # Google's Veo 3 docs: 4, 6 or 8 seconds, 24 fps.

VIDEO_MODEL_IDS: Final[tuple[VideoModelId, ...]] = get_args(VideoModelId)

SIZE_PATTERN: Final = r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$"
_SIZE_RE: Final = re.compile(SIZE_PATTERN)


@dataclass(frozen=True)
class GenerationTime:
    """How long a model takes to render a clip, as assumed until this server's history says more.

    APIMP publishes no timings; these are the middle and the range of what Veo users report (tens
    of seconds for the fast models, minutes otherwise). The poll schedule starts from the typical
    value (see `durations`) and the simulator draws its benchmark tasks from the range.
    """

    typical_seconds: float
    shortest_seconds: float
    longest_seconds: float


_STANDARD_GENERATION: Final = GenerationTime(
    typical_seconds=120.0, shortest_seconds=60.0, longest_seconds=360.0
)
_FAST_GENERATION: Final = GenerationTime(typical_seconds=45.0, shortest_seconds=30.0, longest_seconds=90.0)


@dataclass(frozen=True)
class ModelSpec:
    """One model's documented limits; `None` means the docs set no limit."""

    model_id: VideoModelId
    family: Literal["veo"]
    summary: str
    durations_seconds: tuple[int, ...]
    default_duration_seconds: int
    resolutions: tuple[Resolution, ...] = ()
    source: str = "APIMP Video API docs"
    generation_time: GenerationTime = _STANDARD_GENERATION


_VEO_DURATIONS: Final[tuple[DurationSeconds, ...]] = get_args(DurationSeconds)

MODEL_SPECS: Final[dict[VideoModelId, ModelSpec]] = {
    spec.model_id: spec
    for spec in (
        ModelSpec(
            "veo-3.0-generate-001",
            "veo",
            "Google Veo 3.0: highest quality of the 3.0 line, with native audio.",
            _VEO_DURATIONS,
            8,
            ("720p", "1080p"),
            generation_time=_STANDARD_GENERATION,
        ),
        ModelSpec(
            "veo-3.0-fast-generate-001",
            "veo",
            "Google Veo 3.0 Fast: quicker and cheaper than Veo 3.0.",
            _VEO_DURATIONS,
            8,
            ("720p", "1080p"),
            generation_time=_FAST_GENERATION,
        ),
        ModelSpec(
            "veo-3.1-generate-preview",
            "veo",
            "Google Veo 3.1 (preview): the newest Veo; the only line that renders 4k.",
            _VEO_DURATIONS,
            8,
            ("720p", "1080p", "4k"),
            generation_time=_STANDARD_GENERATION,
        ),
        ModelSpec(
            "veo-3.1-fast-generate-preview",
            "veo",
            "Google Veo 3.1 Fast (preview): quicker and cheaper than Veo 3.1; renders 4k too.",
            _VEO_DURATIONS,
            8,
            ("720p", "1080p", "4k"),
            generation_time=_FAST_GENERATION,
        ),
    )
}


@dataclass(frozen=True)
class RetiredModel:
    """A model APIMP served once and can serve no more: a request naming it is refused with this story."""

    model_id: str
    retired_on: str  # ISO date
    retired_by: str
    reason: str
    source: str

    def refusal(self) -> str:
        available = ", ".join(VIDEO_MODEL_IDS)
        return (
            f"{self.model_id} was retired on {self.retired_on}: {self.reason}, so APIMP can no longer "
            f"serve it. Choose one of the available models: {available}."
        )


def _sora_2(model_id: str) -> RetiredModel:
    return RetiredModel(
        model_id,
        retired_on="2026-09-24",
        retired_by="OpenAI",
        reason="OpenAI switched off the Sora 2 models and its Videos API",
        source="OpenAI's shutdown of Sora 2 and its Videos API, as recorded in this project's brief "
        "(2026-12-02)",
    )


RETIRED_MODELS: Final[dict[str, RetiredModel]] = {
    model.model_id: model for model in (_sora_2("sora-2"), _sora_2("sora-2-pro"))
}


# --- Google's list prices, the default price table (see `pricing`) --------------------------------
# Google bills Veo per second of video; on the Gemini API the price includes the soundtrack.
# APIMP bills in its own units and resellers price differently, so these are only the default
# table of the estimates, replaced by APIMP_PRICES. Google's pricing page could not be read from
# where this was written: each figure was checked against the secondary sources named beside it,
# which quote that page, and none of them is verified against the page itself.
LIST_PRICE_CURRENCY: Final = "USD"
LIST_PRICE_SOURCE: Final = "Google's Gemini API list prices (https://ai.google.dev/gemini-api/docs/pricing)"
LIST_PRICES_CHECKED_ON: Final = "2026-12-02"
# Google's default output resolution for Veo 3 when a request names none: the rate estimates assume it.
DEFAULT_RESOLUTION: Final[Resolution] = "720p"


@dataclass(frozen=True)
class ListPrice:
    """One figure of Google's price list: USD per second of video of a model at a resolution."""

    model_id: VideoModelId
    resolution: Resolution
    usd_per_second: float
    source: str


_VEO_3_1_STANDARD: Final = (
    "Gemini API pricing page as quoted by reapi.ai (May 2026) and theplanettools.ai (April 2026); "
    "matches this project's issue 16 (0.40 at 720p/1080p, 0.60 at 4k). Not verified on Google's page."
)
_VEO_3_1_FAST: Final = (
    "Gemini API pricing page after Google's 2026-04-07 cut, as quoted by reapi.ai (May 2026) and "
    "theplanettools.ai (April 2026). Issue 16 names 0.15 USD/s, the price before that cut. Not "
    "verified on Google's page."
)
_VEO_3_0: Final = (
    "Google's September 2025 Veo 3 prices (standard 0.40, fast 0.15 USD/s with audio), as quoted by "
    "several secondary sources; no later change found. Not verified on Google's page."
)
LIST_PRICES: Final[tuple[ListPrice, ...]] = (
    ListPrice("veo-3.0-generate-001", "720p", 0.40, _VEO_3_0),
    ListPrice("veo-3.0-generate-001", "1080p", 0.40, _VEO_3_0),
    ListPrice("veo-3.0-fast-generate-001", "720p", 0.15, _VEO_3_0),
    ListPrice("veo-3.0-fast-generate-001", "1080p", 0.15, _VEO_3_0),
    ListPrice("veo-3.1-generate-preview", "720p", 0.40, _VEO_3_1_STANDARD),
    ListPrice("veo-3.1-generate-preview", "1080p", 0.40, _VEO_3_1_STANDARD),
    ListPrice("veo-3.1-generate-preview", "4k", 0.60, _VEO_3_1_STANDARD),
    ListPrice("veo-3.1-fast-generate-preview", "720p", 0.10, _VEO_3_1_FAST),
    ListPrice("veo-3.1-fast-generate-preview", "1080p", 0.12, _VEO_3_1_FAST),
    ListPrice("veo-3.1-fast-generate-preview", "4k", 0.30, _VEO_3_1_FAST),
)


def parse_size(size: str) -> tuple[int, int]:
    """Split a "WxH" size into pixels; the caller has already checked SIZE_PATTERN."""
    if not _SIZE_RE.match(size):
        raise ValueError(f"size must look like WIDTHxHEIGHT, e.g. 1280x720, not {size!r}")
    width, height = size.split("x")
    return int(width), int(height)


def aspect_ratio_for_size(size: str) -> AspectRatio:
    """APIMP's documented rule: taller than wide is 9:16, anything else 16:9."""
    width, height = parse_size(size)
    return "9:16" if height > width else "16:9"


# APIMP's size rule: the resolution a side of at least so many pixels reaches (below all: 720p).
SIDE_THRESHOLDS: Final[tuple[tuple[int, Resolution], ...]] = ((3840, "4k"), (1920, "1080p"))
_BELOW_THRESHOLDS: Final[Resolution] = "720p"


def resolution_for_side(pixels: int) -> Resolution:
    """The resolution the size rule gives a side of this many pixels."""
    return next((resolution for least, resolution in SIDE_THRESHOLDS if pixels >= least), _BELOW_THRESHOLDS)


def resolution_for_size(size: str) -> Resolution:
    """APIMP's documented rule, taken literally: it reads the SHORT side of the size.

    So 1920x1080 (short side 1080) maps to 720p, and only 1920 pixels on BOTH sides reach 1080p.
    The authors may have meant the long side; we do not guess, we report what the rule yields
    and recommend setting metadata.resolution explicitly.
    """
    return resolution_for_side(min(parse_size(size)))


def size_rule_text() -> str:
    """The size rule in words, for descriptions: "under 1920 gives 720p, 1920 to 3839 gives ..."."""
    ascending = sorted(SIDE_THRESHOLDS)
    parts = [f"under {ascending[0][0]} gives {_BELOW_THRESHOLDS}"]
    for (least, resolution), (next_least, _) in itertools.pairwise(ascending):
        parts.append(f"{least} to {next_least - 1} gives {resolution}")
    parts.append(f"{ascending[-1][0]} or more gives {ascending[-1][1]}")
    return ", ".join(parts)


def models_rendering(resolution: Resolution) -> tuple[VideoModelId, ...]:
    """The models that can render a resolution."""
    return tuple(model for model, spec in MODEL_SPECS.items() if resolution in spec.resolutions)


def spoken(values: Sequence[object], conjunction: str = "or") -> str:
    """`4, 6 or 8`: values as a sentence lists them."""
    words = [str(value) for value in values]
    return ", ".join(words[:-1]) + f" {conjunction} {words[-1]}" if len(words) > 1 else words[0]


def generation_time(model: str | None) -> GenerationTime:
    """The assumed render time of a model id; the standard models' for an unknown one."""
    spec = MODEL_SPECS.get(model)  # type: ignore[call-overload]
    return spec.generation_time if spec is not None else _STANDARD_GENERATION
