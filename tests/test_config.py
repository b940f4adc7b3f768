"""Settings from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apimp_video_mcp import defaults
from apimp_video_mcp.config import ENVIRONMENT_VARIABLES, Settings
from apimp_video_mcp.errors import ConfigurationError


def test_defaults_need_no_environment_at_all() -> None:
    settings = Settings.from_env({})

    assert settings.api_key is None
    assert settings.base_url == defaults.DEFAULT_BASE_URL
    assert settings.wait_timeout_seconds == defaults.DEFAULT_WAIT_TIMEOUT_SECONDS
    assert settings.download_dir.is_absolute()
    assert "apimp-video-mcp" in str(settings.download_dir)


def test_every_variable_is_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "APIMP_API_KEY": " sk-abc ",
            "APIMP_BASE_URL": "http://127.0.0.1:9",
            "APIMP_DOWNLOAD_DIR": str(tmp_path),
            "APIMP_WAIT_TIMEOUT": "120",
            "APIMP_REQUEST_TIMEOUT": "5",
            "APIMP_POLL_MIN_INTERVAL": "0.5",
            "APIMP_POLL_MAX_INTERVAL": "3",
            "APIMP_PROGRESS_INTERVAL": "2",
            "APIMP_DOWNLOAD_MAX_BYTES": "1000",
            "APIMP_RETRY_MAX_ATTEMPTS": "2",
            "APIMP_RETRY_BASE_DELAY": "0.1",
        }
    )

    assert settings.require_api_key() == "sk-abc"
    assert settings.download_dir == tmp_path
    assert settings.wait_timeout_seconds == 120
    assert settings.download_max_bytes == 1000
    assert settings.retry_max_attempts == 2


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="APIMP_WAIT_TIMEOUT"):
        Settings.from_env({"APIMP_WAIT_TIMEOUT": "soon"})


def test_a_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="APIMP_API_KEY is not set"):
        Settings.from_env({"APIMP_API_KEY": "  "}).require_api_key()


def test_the_key_never_shows_in_repr_or_dumps() -> None:
    settings = Settings.from_env({"APIMP_API_KEY": "sk-very-secret"})

    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())
    assert "sk-very-secret" not in settings.model_dump_json()


def test_the_postgresql_pool_size_is_read_and_kept_at_two_or_more() -> None:
    assert Settings.from_env({"APIMP_POSTGRES_POOL_SIZE": "20"}).postgres_pool_size == 20
    with pytest.raises(ConfigurationError, match="APIMP_POSTGRES_POOL_SIZE"):
        Settings.from_env({"APIMP_POSTGRES_POOL_SIZE": "1"})


def test_a_home_relative_download_dir_is_expanded() -> None:
    settings = Settings.from_env({"APIMP_DOWNLOAD_DIR": "~/videos"})

    assert settings.download_dir == Path.home() / "videos"


def test_the_documented_variables_are_pinned() -> None:
    assert sorted(ENVIRONMENT_VARIABLES.values()) == sorted(
        [
            "APIMP_API_KEY",
            "APIMP_BASE_URL",
            "APIMP_DOWNLOAD_DIR",
            "APIMP_JOURNAL",
            "APIMP_WAIT_TIMEOUT",
            "APIMP_REQUEST_TIMEOUT",
            "APIMP_POLL_MIN_INTERVAL",
            "APIMP_POLL_MAX_INTERVAL",
            "APIMP_PROGRESS_INTERVAL",
            "APIMP_DOWNLOAD_MAX_BYTES",
            "APIMP_DOWNLOAD_TIMEOUT",
            "APIMP_DOWNLOAD_MAX_FILES",
            "APIMP_DOWNLOAD_MAX_TASK_BYTES",
            "APIMP_DOWNLOAD_ALLOWED_HOSTS",
            "APIMP_RETRY_MAX_ATTEMPTS",
            "APIMP_RETRY_BASE_DELAY",
            "APIMP_UPLOAD_ROOTS",
            "APIMP_UPLOAD_MAX_BYTES",
            "APIMP_UI",
            "APIMP_UI_MEDIA_DOMAINS",
            "APIMP_UI_POLL_INTERVAL",
            "APIMP_UI_VIDEO_MAX_BYTES",
            "APIMP_POLL_LEASE",
            "APIMP_CLUSTER_REREAD",
            "APIMP_POSTGRES_POOL_SIZE",
            "APIMP_AUTH",
            "APIMP_KEYS_FILE",
            "APIMP_BYOK_SECRET",
            "APIMP_OAUTH_ISSUER",
            "APIMP_OAUTH_JWKS_URL",
            "APIMP_OAUTH_SCOPES",
            "APIMP_PUBLIC_URL",
            "APIMP_ALLOWED_HOSTS",
            "APIMP_ALLOWED_ORIGINS",
            "APIMP_MAX_RUNNING_TASKS",
            "APIMP_MAX_SUBMITS_PER_HOUR",
            "APIMP_TRUSTED_PROXIES",
            "APIMP_ACCESS_LOG",
            "APIMP_PRICES",
            "APIMP_BUDGET_DAILY",
            "APIMP_BUDGET_MONTHLY",
            "APIMP_BUDGET_TIMEZONE",
            "APIMP_CONFIRM_ABOVE",
            "APIMP_JOURNAL_RETENTION_DAYS",
            "APIMP_JOURNAL_PRUNE_VIDEOS",
            "APIMP_HTTP_STATELESS",
            "APIMP_REQUEST_STATE_KEYS",
        ]
    )


def test_upload_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "APIMP_UPLOAD_ROOTS": os.pathsep.join(["/srv/images", "~/Pictures"]),
            "APIMP_UPLOAD_MAX_BYTES": "1024",
        }
    )

    assert settings.upload_roots == (Path("/srv/images"), Path.home() / "Pictures")
    assert settings.upload_max_bytes == 1024
    assert Settings.from_env({}).upload_roots is None, "unset: the transport decides"
    assert Settings.from_env({"APIMP_UPLOAD_ROOTS": "None"}).upload_roots == ()
    with pytest.raises(ConfigurationError, match=r"APIMP_UPLOAD_ROOTS: .*absolute"):
        Settings.from_env({"APIMP_UPLOAD_ROOTS": "relative/images"})
    with pytest.raises(ConfigurationError, match=r"APIMP_UPLOAD_ROOTS: .*lists no folder"):
        Settings.from_env({"APIMP_UPLOAD_ROOTS": os.pathsep})
    with pytest.raises(ConfigurationError, match="APIMP_UPLOAD_MAX_BYTES"):
        Settings.from_env({"APIMP_UPLOAD_MAX_BYTES": "0"})
