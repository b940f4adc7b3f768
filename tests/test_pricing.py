"""The price table: Google's list prices by default, the user's own plan by APIMP_PRICES; the estimates."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from apimp_video_mcp.catalog import LIST_PRICES, MODEL_SPECS
from apimp_video_mcp.config import Settings
from apimp_video_mcp.costs.pricing import PriceTable, estimate, google_list_prices
from apimp_video_mcp.errors import ConfigurationError
from tests.support import Upstream, structured

pytestmark = pytest.mark.anyio

CREDITS: dict[str, Any] = {
    "currency": "credits",
    "decimals": 0,
    "source": "my APIMP plan",
    "as_of": "2026-12-01",
    "rates": [
        {"model": "*", "per_second": 10},
        {"model": "veo-3.1-generate-preview", "resolution": "4k", "per_second": 60},
        {"model": "veo-3.0-fast-generate-001", "per_task": 50},
        {"model": "*", "audio": False, "per_second": 5},
    ],
}


def test_the_default_table_is_google_list_prices_for_every_model_and_resolution() -> None:
    table = google_list_prices()

    priced = {(price.model_id, price.resolution) for price in LIST_PRICES}
    assert priced == {
        (model, resolution) for model, spec in MODEL_SPECS.items() for resolution in spec.resolutions
    }
    assert all(price.source for price in LIST_PRICES)
    assert table.currency == "USD"
    assert (
        estimate(table, "veo-3.1-generate-preview", seconds=8, resolution="1080p", audio=True).amount == 3.2
    )
    assert estimate(table, "veo-3.1-generate-preview", seconds=8, resolution="4k", audio=True).amount == 4.8
    assert (
        estimate(table, "veo-3.1-fast-generate-preview", seconds=6, resolution="1080p", audio=True).amount
        == 0.72
    )


def test_the_most_specific_rate_wins_per_second_or_per_task() -> None:
    table = PriceTable.model_validate(CREDITS)

    def cost(model: str, resolution: Any = "720p", audio: bool = True, seconds: int = 8) -> float:
        return estimate(table, model, seconds=seconds, resolution=resolution, audio=audio).amount

    assert cost("veo-3.1-generate-preview") == 80
    assert cost("veo-3.1-generate-preview", "4k") == 480
    assert cost("veo-3.0-fast-generate-001", seconds=4) == 50  # flat per task
    assert cost("veo-3.0-generate-001", audio=False) == 40
    shown = estimate(table, "veo-3.0-generate-001", seconds=8, resolution="720p", audio=True)
    assert shown.display == "about 80 credits"
    assert shown.source == "my APIMP plan, as of 2026-12-01"


def test_apimp_prices_takes_inline_json_or_a_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(CREDITS))

    inline = Settings.from_env({"APIMP_PRICES": json.dumps(CREDITS)})
    from_file = Settings.from_env({"APIMP_PRICES": str(path)})

    assert inline.price_table == from_file.price_table
    assert inline.price_table.currency == "credits"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (
            json.dumps({**CREDITS, "rates": [{"model": "veo-3.0-generate-001", "per_second": 1}]}),
            "no rate prices",
        ),
        (
            json.dumps({**CREDITS, "rates": [{"model": "*", "per_second": 1, "per_task": 2}]}),
            "exactly one of",
        ),
        (json.dumps({**CREDITS, "rates": [{"model": "*", "per_second": -1}]}), "rates.0.per_second"),
        ("/nonexistent/prices.json", "cannot read the price table file"),
        ("{not json", "APIMP_PRICES"),
    ],
)
def test_a_bad_price_table_names_the_variable_and_the_problem(value: str, named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"APIMP_PRICES": value})

    assert "APIMP_PRICES" in str(caught.value)
    assert named in str(caught.value)


def test_confirmation_and_budgets_are_configured_by_variables() -> None:
    settings = Settings.from_env(
        {
            "APIMP_CONFIRM_ABOVE": "off",
            "APIMP_BUDGET_DAILY": "10",
            "APIMP_BUDGET_MONTHLY": "100.5",
            "APIMP_BUDGET_TIMEZONE": "Europe/Paris",
        }
    )

    assert settings.confirm_above_cost is None
    assert (settings.budget_daily, settings.budget_monthly) == (10, 100.5)
    assert str(settings.budget_zone) == "Europe/Paris"
    with pytest.raises(ConfigurationError, match="APIMP_BUDGET_TIMEZONE"):
        Settings.from_env({"APIMP_BUDGET_TIMEZONE": "Mars/Olympus"})
    assert Settings.from_env({}).confirm_above_cost == 2.0
    assert Settings.from_env({}).budget_zone is UTC  # no zone database needed (Windows has none)


async def test_the_submit_result_and_the_models_resource_carry_estimates(
    client: Client, upstream: Upstream
) -> None:
    submitted = structured(
        await client.call_tool(
            "submit_video",
            {
                "model": "veo-3.1-fast-generate-preview",
                "input": {"prompt": "x", "size": "1280x720", "duration": 6},
            },
        )
    )
    catalog = json.loads((await client.read_resource("apimp://models")).contents[0].text)  # type: ignore[union-attr]

    cost = submitted["estimated_cost"]
    assert (cost["amount"], cost["seconds"], cost["resolution"], cost["audio"]) == (0.6, 6, "720p", True)
    assert cost["display"] == "about 0.60 USD"
    models = {model["model_id"]: model for model in catalog["models"]}
    assert models["veo-3.1-generate-preview"]["estimated_cost"] == {"720p": 3.2, "1080p": 3.2, "4k": 4.8}
    assert catalog["prices"]["currency"] == "USD"
    assert "Estimates" in catalog["prices"]["note"]
