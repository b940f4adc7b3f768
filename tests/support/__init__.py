"""Helpers shared by the tests: settings for fast runs and readers of tool results."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr

from apimp_video_mcp.config import Settings
from apimp_video_mcp.downloads.network import allowance_for
from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator

# A short task keeps every end-to-end test well under a second of waiting.
TASK_DURATION_SECONDS = 0.4

Mode = Literal["auto", "legacy"]


def missing_system_package(message: str) -> NoReturn:
    """A Debian package the test needs is absent: a failure under CI=true, a skip elsewhere."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Upstream:
    simulator: Simulator
    base_url: str


def fast_settings(base_url: str, download_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: polling, heartbeats and retries in milliseconds, not seconds."""
    values: dict[str, Any] = {
        "api_key": SecretStr(SIMULATOR_API_KEY),
        "base_url": base_url,
        "download_dir": download_dir,
        # A real file beside the download folder, unique to the test.
        "journal_path": str(download_dir.with_name(f"{download_dir.name}-journal.sqlite3")),
        "poll_min_interval_seconds": 0.02,
        "poll_max_interval_seconds": 0.05,
        "progress_interval_seconds": 0.02,
        "retry_base_delay_seconds": 0.01,
        "wait_timeout_seconds": 10.0,
        # Asking a person before expensive submits has tests of its own (test_confirmation.py).
        "confirm_above_cost": None,
    }
    values.update(overrides)
    # The simulator serves its result files on loopback: allowed explicitly, as its own host only.
    values["download_allowed_hosts"] = (allowance_for(base_url), *values.get("download_allowed_hosts", ()))
    return Settings.model_validate(values)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    content = result.structured_content
    assert isinstance(content, dict)
    return content
