"""The player view's pure rules: when to poll again, what counts as an estimate, which origins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apimp_video_mcp import defaults
from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.polling.durations import typical_duration
from apimp_video_mcp.view.player import (
    _seconds_between,
    configured_media_origins,
    estimate,
    next_poll_seconds,
    origin_of,
)


@pytest.mark.parametrize(
    ("quiet_seconds", "expected"),
    [
        (0.0, 2.0),  # the task just moved: the base interval
        (4.0, 2.0),  # a short lull changes nothing
        (20.0, 5.0),  # quiet for 20 s: a quarter of that
        (60.0, 15.0),  # quiet for a minute: the maximum
        (3600.0, 15.0),  # never beyond it
    ],
)
def test_the_view_polls_at_the_base_interval_and_backs_off_while_nothing_changes(
    quiet_seconds: float, expected: float
) -> None:
    assert next_poll_seconds(quiet_seconds, base_seconds=2.0, max_seconds=15.0) == expected


def test_a_base_interval_above_the_maximum_wins() -> None:
    assert next_poll_seconds(600.0, base_seconds=30.0, max_seconds=15.0) == 30.0


def test_there_is_no_estimate_without_enough_earlier_tasks() -> None:
    too_few = [40.0] * (defaults.TYPICAL_DURATION_MIN_SAMPLES - 1)

    assert not typical_duration("veo-3.1-generate-preview", too_few).learned
    assert estimate(too_few, elapsed_seconds=10.0) is None


def test_the_estimate_is_the_median_of_earlier_tasks_minus_the_time_elapsed() -> None:
    result = estimate([30.0, 50.0, 45.0, 300.0], elapsed_seconds=20.0)

    assert result is not None
    assert result.typical_seconds == 47.5  # the median shrugs off the one slow outlier
    assert result.samples == 4
    assert result.remaining_seconds == 27.5


def test_a_task_slower_than_usual_has_nothing_left_rather_than_a_negative_time() -> None:
    result = estimate([30.0, 30.0, 30.0], elapsed_seconds=95.0)

    assert result is not None
    assert result.remaining_seconds == 0.0


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://cdn.example.com/v/task_1.mp4?sig=abc", "https://cdn.example.com"),
        ("https://user:secret@cdn.example.com:8443/x.mp4", "https://cdn.example.com:8443"),
        ("http://127.0.0.1:8765/files/task_1.mp4", "http://127.0.0.1:8765"),
        ("HTTPS://CDN.Example.COM/x", "https://cdn.example.com"),
        ("http://[::1]:9000/x.mp4", "http://[::1]:9000"),
        ("ftp://files.example.com/x.mp4", None),
        ("data:video/mp4;base64,AAAA", None),
        ("https://bad:port/x", None),
        ("not a url", None),
    ],
)
def test_an_origin_is_scheme_host_and_port_of_a_web_url_and_nothing_else(
    url: str, origin: str | None
) -> None:
    assert origin_of(url) == origin


def test_the_configured_origins_are_the_setting_and_apimps_own() -> None:
    settings = Settings.from_env(
        {
            "APIMP_BASE_URL": "https://api.apimp.ai/",
            "APIMP_UI_MEDIA_DOMAINS": "https://CDN.example.com, https://*.storage.example.net:8443",
        }
    )

    assert configured_media_origins(settings) == [
        "https://*.storage.example.net:8443",
        "https://api.apimp.ai",
        "https://cdn.example.com",
    ]


@pytest.mark.parametrize(
    "value",
    ["https://cdn.example.com/videos", "cdn.example.com", "https://cdn.example.com;script-src *", "*"],
)
def test_a_media_domain_that_is_not_an_origin_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigurationError, match="APIMP_UI_MEDIA_DOMAINS"):
        Settings.from_env({"APIMP_UI_MEDIA_DOMAINS": value})


@pytest.mark.parametrize(("value", "enabled"), [("off", False), ("false", False), ("0", False), ("on", True)])
def test_apimp_ui_turns_the_view_on_and_off(value: str, enabled: bool) -> None:
    assert Settings.from_env({"APIMP_UI": value}).ui_enabled is enabled
    assert Settings.from_env({}).ui_enabled is True


def test_a_journal_time_that_cannot_be_read_counts_as_none_and_one_without_a_zone_as_utc() -> None:
    now = datetime(2026, 3, 1, 10, 1, 0, tzinfo=UTC)

    assert _seconds_between("not a time", now) == 0.0
    assert _seconds_between("2026-03-01T10:00:00", now) == 60.0
    assert _seconds_between("2026-03-01T10:02:00+00:00", now) == 0.0  # never a negative age
