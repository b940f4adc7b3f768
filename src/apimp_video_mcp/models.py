"""Wire models: the APIMP request body and the task status it answers with.

These classes are the single source of truth for the request's shape. The same model validates
a tool's arguments, produces its JSON Schema (with the documentation's wording as field
descriptions) and, dumped, becomes the exact body APIMP receives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from apimp_video_mcp import defaults, json_limits
from apimp_video_mcp.catalog import (
    MODEL_SPECS,
    RETIRED_MODELS,
    SIDE_THRESHOLDS,
    SIZE_PATTERN,
    AspectRatio,
    DurationSeconds,
    ModelSpec,
    Resolution,
    VideoModelId,
    aspect_ratio_for_size,
    models_rendering,
    parse_size,
    resolution_for_side,
    resolution_for_size,
    size_rule_text,
    spoken,
)
from apimp_video_mcp.errors import InvalidRequestError

logger = logging.getLogger(__name__)

# A task id as APIMP issues them ("task_..."), and nothing that could escape the status URL's path.
TASK_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
PersonGeneration = Literal["allow_all", "allow_adult", "dont_allow"]
CompressionQuality = Literal["optimized", "lossless"]
ResizeMode = Literal["pad", "crop"]

HttpUrlString = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=4096)]
# An http(s) URL (sent as is), a file:// URL, or a local path: absolute, ~/..., Windows C:\..., or
# relative to the server's working directory (a relative path with a colon needs a leading ./, so
# that other URL schemes such as data: or ftp:// are refused here). Local files are uploaded first.
ImageReference = Annotated[
    str,
    Field(
        pattern=r"^(?:https?://\S+|file://\S+|[/~.].*|[A-Za-z]:[\\/].*|[^:]+)$",
        min_length=1,
        max_length=4096,
    ),
]


def _by_model(values_of: Callable[[ModelSpec], Sequence[object]]) -> str:
    """A limit in words from the catalog: one phrase when every model shares it, else per model."""
    groups: dict[tuple[object, ...], list[str]] = {}
    for spec in MODEL_SPECS.values():
        groups.setdefault(tuple(values_of(spec)), []).append(spec.model_id)
    if len(groups) == 1:
        return spoken(next(iter(groups)))
    return "; ".join(f"{spoken(ids, 'and')}: {spoken(values)}" for values, ids in groups.items())


def _only_on(resolution: Resolution) -> str:
    return f"{resolution} only on {spoken(models_rendering(resolution), 'and')}"


_DURATION_HELP: Final = f"Veo 3 models: {_by_model(lambda spec: spec.durations_seconds)} (Google's docs)."
# The resolutions not every model renders, each with the models that do (today: 4k, veo-3.1 only).
_RESOLUTION_LIMITS: Final = "; ".join(
    _only_on(resolution)
    for resolution in get_args(Resolution)
    if 0 < len(models_rendering(resolution)) < len(MODEL_SPECS)
)
# A size whose long side reaches 1080p and whose short side does not: the rule's surprise.
_SIZE_EXAMPLE: Final = f"{min(least for least, resolution in SIDE_THRESHOLDS if resolution == '1080p')}x1080"
_IMAGE_HELP: Final = (
    "Either an http(s) URL, sent as is, or a local image file on the machine running this server: an "
    "absolute path, ~/..., a path relative to the server's working directory, or a file:// URL. A local "
    "file is uploaded to APIMP first and its hosted URL is sent instead (the result lists it under "
    "uploaded_images). Local files must be PNG, JPEG, WebP or GIF, at most "
    f"{defaults.UPLOAD_MAX_BYTES // (1024 * 1024)} MiB unless the server sets APIMP_UPLOAD_MAX_BYTES, "
    "inside the folders the server allows (APIMP_UPLOAD_ROOTS); a server reached over HTTP accepts "
    "no local path unless its operator allowed folders."
)


def _refuse_retired(value: object) -> object:
    """A retired model id gets its own story (when, by whom, what to use) instead of a bare enum error.

    It runs before the enum check, which publishes only the available models in the schema.
    """
    retired = RETIRED_MODELS.get(value) if isinstance(value, str) else None
    if retired is not None:
        raise PydanticCustomError("model_retired", retired.refusal())
    return value


ModelChoice = Annotated[VideoModelId, BeforeValidator(_refuse_retired)]


class VeoMetadata(BaseModel):
    """Model-specific parameters, passed through to the video model (Google's Veo names)."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"additionalProperties": True, "maxProperties": defaults.METADATA_MAX_KEYS},
    )

    duration_seconds: DurationSeconds | None = Field(
        default=None,
        alias="durationSeconds",
        description=f"Clip length in seconds; the same as input.duration and wins when both are set. "
        f"{_DURATION_HELP}",
    )
    aspect_ratio: AspectRatio | None = Field(
        default=None,
        alias="aspectRatio",
        description="Frame shape: 16:9 (landscape) or 9:16 (portrait). Inferred from input.size when absent.",
    )
    resolution: Resolution | None = Field(
        default=None,
        description="Output resolution. Inferred from input.size when absent (see input.size for the "
        f"rule). {_RESOLUTION_LIMITS}. Set it explicitly to be sure what you get.",
    )
    negative_prompt: str | None = Field(
        default=None,
        alias="negativePrompt",
        max_length=defaults.PROMPT_MAX_CHARS,
        description="What should NOT appear in the video, e.g. 'text overlays, blurry faces'.",
    )
    person_generation: PersonGeneration | None = Field(
        default=None,
        alias="personGeneration",
        description="Policy for generating people: allow_all, allow_adult (adults only) or dont_allow.",
    )
    storage_uri: str | None = Field(
        default=None,
        alias="storageUri",
        pattern=r"^gs://\S+$",
        description="Google Cloud Storage URI (gs://bucket/path) to write the output to. "
        "Vertex channel only.",
    )
    compression_quality: CompressionQuality | None = Field(
        default=None,
        alias="compressionQuality",
        description="Output compression: optimized (smaller file) or lossless.",
    )
    resize_mode: ResizeMode | None = Field(
        default=None,
        alias="resizeMode",
        description="How a reference image of another shape is fitted to the frame: pad or crop.",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=4_294_967_295,
        description="Random seed (0 to 4294967295); the same seed and inputs reproduce the output.",
    )
    generate_audio: bool | None = Field(
        default=None,
        alias="generateAudio",
        description="Whether to generate a soundtrack along with the video.",
    )

    @model_validator(mode="after")
    def _bounded(self) -> VeoMetadata:
        """The keys passed through are whatever a caller sends: bound them before they go anywhere."""
        extra = self.model_extra or {}
        keys = len(self.model_fields_set) + len(extra)
        if keys > defaults.METADATA_MAX_KEYS:
            raise ValueError(f"metadata has {keys} keys; at most {defaults.METADATA_MAX_KEYS} are allowed")
        levels = json_limits.depth(extra)  # the metadata object itself is the first level
        if levels > defaults.METADATA_MAX_DEPTH:
            raise ValueError(
                f"metadata is nested {levels} levels deep; at most {defaults.METADATA_MAX_DEPTH} are allowed"
            )
        size = json_limits.encoded_bytes(extra)
        if size > defaults.METADATA_MAX_BYTES:
            raise ValueError(
                f"metadata's other keys take {size} bytes of JSON; at most {defaults.METADATA_MAX_BYTES} "
                "bytes are allowed"
            )
        where = json_limits.non_finite_path(extra, "metadata")
        if where is not None:
            raise ValueError(f"{where} must be a finite number: JSON has no NaN or infinity")
        return self


class VideoInput(BaseModel):
    """The `input` object of an APIMP generation request."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        min_length=1,
        max_length=defaults.PROMPT_MAX_CHARS,
        # The pattern is published for the model to see; the validator below gives the clear message.
        json_schema_extra={"pattern": r"\S"},
        description="Description of the video to generate: subject, action, setting, camera, style, "
        f"sound. Required, not blank, at most {defaults.PROMPT_MAX_CHARS} characters (Veo reads about "
        "1,024 tokens: roughly 4,000 characters of English).",
    )
    size: str | None = Field(
        default=None,
        pattern=SIZE_PATTERN,
        description="Frame size in pixels as 'WIDTHxHEIGHT', e.g. '1280x720'. On Veo the gateway maps it "
        f"to aspectRatio (height > width gives 9:16, else 16:9) and resolution by the SHORT side: "
        f"{size_rule_text()}. So {_SIZE_EXAMPLE} yields {resolution_for_size(_SIZE_EXAMPLE)}; "
        "set metadata.resolution for 1080p.",
    )
    duration: DurationSeconds | None = Field(
        default=None,
        description=f"Clip length in seconds (mapped to Veo's durationSeconds). {_DURATION_HELP}",
    )
    seconds: DurationSeconds | None = Field(
        default=None,
        description=f"Clip length in seconds; another name APIMP accepts for duration. {_DURATION_HELP}",
    )
    image: ImageReference | None = Field(
        default=None,
        description=f"The image to use as the first frame (image-to-video). {_IMAGE_HELP}",
    )
    images: Annotated[list[ImageReference], Field(max_length=1)] | None = Field(
        default=None,
        description="First-frame images, at most 1 (only the first is used). Alternative to image; each "
        "item is a URL or a local file, as for image.",
    )
    metadata: VeoMetadata | None = Field(
        default=None,
        description="Model-specific parameters passed through to the model. The documented Veo fields "
        f"are listed; any other key is passed through as-is. At most {defaults.METADATA_MAX_KEYS} keys, "
        f"nested at most {defaults.METADATA_MAX_DEPTH} levels deep, the other keys at most "
        f"{defaults.METADATA_MAX_BYTES} bytes of JSON, numbers finite (no NaN or infinity).",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("the prompt is blank: describe the video to generate")
        return prompt


class SubmitRequest(BaseModel):
    """The body of `POST /api/generate/submit`: exactly the arguments of submit_video."""

    model: ModelChoice
    input: VideoInput

    def to_body(self) -> dict[str, Any]:
        """The JSON APIMP receives: what the caller sent, nothing added, nothing renamed."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def check_documented_rules(self) -> None:
        """Rules the docs state that a JSON Schema cannot express; checked before any credit is spent."""
        spec = MODEL_SPECS[self.model]
        metadata = self.input.metadata
        for field, value in (
            ("input.duration", self.input.duration),
            ("input.seconds", self.input.seconds),
            ("input.metadata.durationSeconds", metadata.duration_seconds if metadata else None),
        ):
            if value is not None and value not in spec.durations_seconds:
                raise InvalidRequestError(
                    field,
                    f"{self.model} makes clips of {spoken(spec.durations_seconds)} seconds, not {value}.",
                )
        if spec.family == "veo":
            self._check_veo_resolution(spec.resolutions)

    def _check_veo_resolution(self, allowed: tuple[Resolution, ...]) -> None:
        derived = effective_format(self)
        resolution = derived.resolution
        if resolution is None or resolution in allowed:
            return
        if derived.resolution_source == "metadata":
            raise InvalidRequestError(
                "input.metadata.resolution",
                f"{resolution} is only available on {spoken(models_rendering(resolution), 'and')}; "
                f"{self.model} renders {spoken(allowed)}.",
            )
        raise InvalidRequestError(
            "input.size",
            f"{self.input.size} maps to {resolution} by the documented rule, which {self.model} cannot "
            f"render ({spoken(allowed)}; {_only_on(resolution)}).",
        )


FormatSource = Literal["metadata", "input", "size", "model default"]


class EffectiveFormat(BaseModel):
    """The format the request will get, derived by the documented rules, with where each value came from."""

    aspect_ratio: AspectRatio | None = Field(
        description=f"{spoken(get_args(AspectRatio))} (Veo), or None if the model decides."
    )
    aspect_ratio_source: FormatSource | None
    resolution: Resolution | None = Field(
        description=f"{spoken(get_args(Resolution))}, or None if the model's default applies."
    )
    resolution_source: FormatSource | None
    duration_seconds: int = Field(description="Clip length in seconds.")
    duration_source: FormatSource
    notes: list[str] = Field(default_factory=list, description="Surprises in the documented rules.")


def effective_format(request: SubmitRequest) -> EffectiveFormat:
    """What the request gets: an explicit metadata value wins, else the input's own field (duration),
    else the size rule (aspect ratio, resolution), else the model's default.

    The one statement of these rules: validation checks the resolution it yields against the model,
    and submit_video reports it.
    """
    spec = MODEL_SPECS[request.model]
    data, metadata = request.input, request.input.metadata
    notes: list[str] = []

    duration: int = spec.default_duration_seconds
    duration_source: FormatSource = "model default"
    if metadata is not None and metadata.duration_seconds is not None:
        duration, duration_source = metadata.duration_seconds, "metadata"
    elif data.duration is not None or data.seconds is not None:
        duration, duration_source = (data.duration or data.seconds or duration), "input"

    aspect: AspectRatio | None = None
    aspect_source: FormatSource | None = None
    resolution: Resolution | None = None
    resolution_source: FormatSource | None = None
    if metadata is not None and metadata.aspect_ratio is not None:
        aspect, aspect_source = metadata.aspect_ratio, "metadata"
    elif data.size is not None:
        aspect, aspect_source = aspect_ratio_for_size(data.size), "size"

    if metadata is not None and metadata.resolution is not None:
        resolution, resolution_source = metadata.resolution, "metadata"
    elif data.size is not None:
        resolution, resolution_source = resolution_for_size(data.size), "size"
        by_long_side = resolution_for_side(max(parse_size(data.size)))
        if resolution == "720p" and by_long_side != "720p":
            notes.append(
                f"The documented rule reads the SHORT side of size, so {data.size} yields 720p, not "
                "1080p. Set input.metadata.resolution to '1080p' (and aspectRatio) to be explicit."
            )
    if spec.family == "veo" and aspect is None:
        notes.append("No size or aspectRatio given: Veo's default applies (16:9).")
    return EffectiveFormat(
        aspect_ratio=aspect,
        aspect_ratio_source=aspect_source,
        resolution=resolution,
        resolution_source=resolution_source,
        duration_seconds=duration,
        duration_source=duration_source,
        notes=notes,
    )


# --- What APIMP answers ------------------------------------------------------------------------

TaskStatus = Literal["not_started", "running", "finished", "failed"]
KNOWN_STATUSES: Final[frozenset[str]] = frozenset(get_args(TaskStatus))
TERMINAL_STATUSES: Final[frozenset[TaskStatus]] = frozenset({"finished", "failed"})

# What a result file's URL ends with when it is a video: it decides the saved copy's name too.
VIDEO_EXTENSIONS: Final = (".mp4", ".mov", ".webm", ".m4v", ".mkv", ".avi")
_IMAGE_EXTENSIONS: Final = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


class TaskFile(BaseModel):
    """One result file as APIMP lists it."""

    model_config = ConfigDict(extra="ignore")

    file_url: str
    file_type: str | None = None

    @property
    def is_video(self) -> bool:
        """APIMP labels every file "image", so the URL decides; an unknown extension counts as video
        because the tasks we create are video tasks."""
        path = urlsplit(self.file_url).path.lower()
        if path.endswith(VIDEO_EXTENSIONS) or self.file_type == "video":
            return True
        return not path.endswith(_IMAGE_EXTENSIONS)


class TaskSnapshot(BaseModel):
    """A task's state at one moment, parsed from APIMP's `data` object in exactly one place."""

    task_id: str
    status: TaskStatus
    upstream_status: str
    progress: int | None = None
    created_time: str | None = None
    finished_time: str | None = None
    error_message: str | None = None
    files: list[TaskFile] = Field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def video_urls(self) -> list[str]:
        return [file.file_url for file in self.files if file.is_video]

    @property
    def other_file_urls(self) -> list[str]:
        return [file.file_url for file in self.files if not file.is_video]

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], *, task_id: str | None = None) -> TaskSnapshot:
        """Parse APIMP's `data`; an unknown status is logged and treated as still running."""
        raw_status = _bounded(str(data.get("status") or "not_started"))
        status: TaskStatus
        if raw_status in KNOWN_STATUSES:
            status = raw_status  # type: ignore[assignment]  # narrowed by the membership test
        else:
            logger.warning("APIMP reported an unknown task status %r; treating it as running", raw_status)
            status = "running"
        files = data.get("files") or []
        return cls(
            task_id=str(data.get("task_id") or task_id or ""),
            status=status,
            upstream_status=raw_status,
            progress=_progress(data.get("progress")),
            created_time=_optional_str(data.get("created_time")),
            finished_time=_optional_str(data.get("finished_time")),
            error_message=_bounded(_optional_str(data.get("error_message"))),
            files=[TaskFile.model_validate(item) for item in files if isinstance(item, Mapping)][
                : defaults.UPSTREAM_FILES_MAX
            ],
        )


class UploadedFile(BaseModel):
    """A file APIMP's Public API stored, parsed from its upload answer's `data` in exactly one place.

    Only `file_url` is required: the other fields are documented, but nothing depends on them,
    so an answer that lacks one (or spells a number as a string) is still understood.
    """

    file_url: HttpUrlString
    file_id: str | None = None
    file_name: str | None = None
    original_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    upload_path: str | None = None
    download_url: str | None = None
    upload_time: str | None = None
    expires_at: str | None = Field(default=None, description="ISO-8601 as APIMP sent it; images live 72 h.")

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> UploadedFile:
        """Parse APIMP's upload `data`; raises ValueError when it names no usable file URL."""
        values: dict[str, object] = {
            name: _optional_str(data.get(name)) for name in cls.model_fields if name != "file_size"
        }
        size = data.get("file_size")
        values["file_size"] = int(size) if isinstance(size, int | str) and str(size).isdigit() else None
        return cls.model_validate(values)


def _progress(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return max(0, min(100, round(float(value))))
    except ValueError:
        return None


_Text = TypeVar("_Text", str, str | None)


def _bounded(text: _Text) -> _Text:
    """An upstream text cut to UPSTREAM_TEXT_MAX_CHARS (… when cut): a hostile or broken answer
    cannot put megabytes into a result, a log line or the journal."""
    if text is None or len(text) <= defaults.UPSTREAM_TEXT_MAX_CHARS:
        return text
    return text[: defaults.UPSTREAM_TEXT_MAX_CHARS] + "…"


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
