"""What a video will cost, estimated before anything is paid: the price table and its quotes.

A price table is a currency (or credit unit) and a list of rates. A rate prices one model,
optionally only at one resolution or only with (or without) a soundtrack, either per second of
video or as a flat amount per task; the most specific rate that matches a request wins. The
default table is Google's list prices (`catalog.LIST_PRICES`); APIMP bills in its own units and
resellers price differently, so `APIMP_PRICES` replaces it with the user's own plan.

Every figure that comes out of here is an estimate, and says so: the bill is APIMP's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from apimp_video_mcp.catalog import (
    LIST_PRICE_CURRENCY,
    LIST_PRICE_SOURCE,
    LIST_PRICES,
    LIST_PRICES_CHECKED_ON,
    MODEL_SPECS,
    Resolution,
    VideoModelId,
)

ANY_MODEL: Final = "*"
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Rate(BaseModel):
    """One line of a price table: what `model` costs, per second or per task."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: VideoModelId | Literal["*"] = Field(description="A model id, or * for every model.")
    resolution: Resolution | None = Field(default=None, description="Only at this resolution; any if absent.")
    audio: bool | None = Field(
        default=None, description="Only with (true) or without (false) a soundtrack; either if absent."
    )
    per_second: Amount | None = Field(default=None, description="Price per second of video.")
    per_task: Amount | None = Field(default=None, description="Flat price per task, whatever its length.")
    note: str | None = Field(default=None, description="Where the figure comes from, or anything to know.")

    @model_validator(mode="after")
    def _one_price(self) -> Self:
        if (self.per_second is None) == (self.per_task is None):
            raise ValueError("each rate needs exactly one of per_second and per_task")
        return self

    def matches(self, model: str, resolution: Resolution, audio: bool) -> bool:
        return (
            self.model in (model, ANY_MODEL)
            and self.resolution in (None, resolution)
            and self.audio in (None, audio)
        )

    @property
    def specificity(self) -> int:
        """A model beats `*`, then a resolution and an audio condition each narrow the rate further."""
        return 4 * (self.model != ANY_MODEL) + 2 * (self.resolution is not None) + (self.audio is not None)

    def price(self, seconds: int) -> float:
        return self.per_task if self.per_task is not None else (self.per_second or 0.0) * seconds


class PriceTable(BaseModel):
    """The rates estimates are computed from, in one currency or credit unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(
        min_length=1, max_length=24, description="USD, EUR, credits: the unit of every figure."
    )
    decimals: int = Field(default=2, ge=0, le=6, description="Digits shown after the decimal point.")
    source: str = Field(default="your own price table", max_length=500)
    as_of: str | None = Field(default=None, max_length=40, description="When the figures were checked.")
    rates: tuple[Rate, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _prices_every_model(self) -> Self:
        """A table that cannot price every request is refused when the server starts, not mid-call."""
        missing = [
            f"{model} at {resolution}{'' if audio else ' without audio'}"
            for model, spec in MODEL_SPECS.items()
            for resolution in spec.resolutions
            for audio in (True, False)
            if not any(rate.matches(model, resolution, audio) for rate in self.rates)
        ]
        if missing:
            raise ValueError(
                f"no rate prices {', '.join(missing)}; add a rate for each (or one with model '*')"
            )
        return self

    def rate_for(self, model: str, resolution: Resolution, audio: bool) -> Rate:
        matching = [rate for rate in self.rates if rate.matches(model, resolution, audio)]
        return max(matching, key=lambda rate: rate.specificity)  # the validator ensures one matches

    def format(self, amount: float) -> str:
        return f"{amount:,.{self.decimals}f} {self.currency}"

    def describe(self) -> str:
        return f"{self.source}, as of {self.as_of}" if self.as_of else self.source

    @classmethod
    def load(cls, value: str) -> PriceTable:
        """APIMP_PRICES: the JSON itself (it starts with `{`) or the path of a JSON file."""
        text = value if value.lstrip().startswith("{") else Path(value).expanduser().read_text("utf-8")
        return cls.model_validate(json.loads(text))


def google_list_prices() -> PriceTable:
    """The default table: Google's published per-second list prices (see `catalog.LIST_PRICES`)."""
    return PriceTable(
        currency=LIST_PRICE_CURRENCY,
        source=LIST_PRICE_SOURCE,
        as_of=LIST_PRICES_CHECKED_ON,
        rates=tuple(
            Rate(
                model=price.model_id,
                resolution=price.resolution,
                per_second=price.usd_per_second,
                note=price.source,
            )
            for price in LIST_PRICES
        ),
    )


class CostEstimate(BaseModel):
    """The estimated price of one task, with what it was computed from."""

    amount: float = Field(
        description="The estimate, in `currency`. An estimate: APIMP bills the real amount."
    )
    currency: str
    display: str = Field(description="The estimate as a person reads it, e.g. 'about 3.20 USD'.")
    model: str
    seconds: int = Field(description="Clip length the estimate assumes.")
    resolution: Resolution = Field(description="Resolution the estimate assumes (Veo's 720p when unset).")
    audio: bool = Field(description="Whether the estimate assumes a soundtrack (Veo's default: yes).")
    basis: Literal["per_second", "per_task"]
    rate: float = Field(description="The rate applied: per second or per task, as `basis` says.")
    source: str = Field(description="The price table the rate comes from, and when it was checked.")

    @property
    def shape(self) -> str:
        """'8 s, 4k, veo-3.1-generate-preview': what is being priced, in a person's words."""
        sound = "" if self.audio else ", no audio"
        return f"{self.seconds} s, {self.resolution}{sound}, {self.model}"


def estimate(
    table: PriceTable, model: str, *, seconds: int, resolution: Resolution, audio: bool
) -> CostEstimate:
    """Seconds x the model's rate (or its flat rate), from the most specific matching line."""
    rate = table.rate_for(model, resolution, audio)
    amount = _round(rate.price(seconds))
    basis: Literal["per_second", "per_task"] = "per_task" if rate.per_task is not None else "per_second"
    return CostEstimate(
        amount=amount,
        currency=table.currency,
        display=f"about {table.format(amount)}",
        model=model,
        seconds=seconds,
        resolution=resolution,
        audio=audio,
        basis=basis,
        rate=rate.per_task if rate.per_task is not None else rate.per_second or 0.0,
        source=table.describe(),
    )


def _round(amount: float) -> float:
    """Money sums must not drift: amounts are kept to a millionth of the unit."""
    return math.floor(amount * 1_000_000 + 0.5) / 1_000_000
