"""The Claude Desktop bundle's manifest.json agrees with the server it starts.

The manifest is written by hand for the extension directory, so these tests hold it to the code:
its tools are the server's tools, its environment mapping names the server's variables, its
version and Python are the project's. The packed bundle itself is tested in test_bundle.py.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from apimp_video_mcp.cli import build_parser, with_upload_roots
from apimp_video_mcp.config import ENVIRONMENT_VARIABLES, Settings
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.server import build_server

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "manifest.json").read_text())
    return loaded


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def user_config_references() -> set[str]:
    """Every `${user_config.KEY}` in how the host starts the server (arguments and environment)."""
    mcp_config = manifest()["server"]["mcp_config"]
    texts = [*mcp_config.get("args", []), *mcp_config.get("env", {}).values()]
    found = {name for text in texts for name in PLACEHOLDER.findall(text)}
    return {name.removeprefix("user_config.") for name in found if name.startswith("user_config.")}


async def test_the_manifest_lists_exactly_the_servers_tools(settings: Settings) -> None:
    """The extension directory shows the manifest's list: it must be what the server serves."""
    async with Client(build_server(settings)) as client:
        served = {tool.name for tool in (await client.list_tools()).tools}

    listed = [tool["name"] for tool in manifest()["tools"]]
    assert sorted(listed) == sorted(served), "update manifest.json's tools to match the server"
    assert len(listed) == len(set(listed))
    assert all(tool.get("description") for tool in manifest()["tools"])


def test_every_setting_the_host_asks_for_reaches_the_server() -> None:
    config = manifest()["user_config"]
    env = manifest()["server"]["mcp_config"]["env"]

    assert user_config_references() == set(config), "each user_config entry is used, and only those"
    assert set(env) <= set(ENVIRONMENT_VARIABLES.values())
    assert env["APIMP_API_KEY"] == "${user_config.api_key}"
    assert env["APIMP_DOWNLOAD_DIR"] == "${user_config.download_dir}"
    assert env["APIMP_BASE_URL"] == "${user_config.base_url}"
    # A multi-folder pick can only travel as arguments: one per folder, after the flag.
    args = manifest()["server"]["mcp_config"]["args"]
    assert args[-2:] == ["--upload-roots", "${user_config.upload_roots}"]
    assert config["upload_roots"]["type"] == "directory"
    assert config["upload_roots"]["multiple"] is True
    assert config["download_dir"]["type"] == "directory"


def test_the_key_is_secret_and_required_and_nothing_else_is() -> None:
    config = manifest()["user_config"]

    assert config["api_key"]["sensitive"] is True
    assert config["api_key"]["required"] is True
    assert [name for name, option in config.items() if option.get("sensitive")] == ["api_key"]
    assert [name for name, option in config.items() if option.get("required")] == ["api_key"]


def test_every_optional_setting_has_a_default_free_of_placeholders() -> None:
    """Claude Desktop passes an unset optional value on as the raw `${user_config.x}` text, and does
    not expand `${HOME}` inside defaults (modelcontextprotocol/mcpb issues 250 and 251): so every
    optional entry has a default, an empty one meaning "the server's own default"."""
    for name, option in manifest()["user_config"].items():
        if option.get("required"):
            continue
        assert "default" in option, name
        assert "${" not in json.dumps(option["default"]), name


def test_empty_settings_mean_the_servers_defaults() -> None:
    """What the host sends for untouched optional entries: empty variables and a bare flag."""
    env = {"APIMP_API_KEY": "sk-test", "APIMP_DOWNLOAD_DIR": "", "APIMP_BASE_URL": ""}
    args = build_parser().parse_args(["--upload-roots"])

    settings = with_upload_roots(Settings.from_env(env), args.upload_roots)

    assert settings.base_url == Settings().base_url
    assert settings.download_dir == Settings().download_dir
    assert settings.upload_roots is None


def test_picked_folders_become_the_upload_roots(tmp_path: Path) -> None:
    pictures, desktop = tmp_path / "Pictures", tmp_path / "My Desktop"
    args = build_parser().parse_args(["--upload-roots", str(pictures), str(desktop)])

    settings = with_upload_roots(Settings.from_env({"APIMP_UPLOAD_ROOTS": "none"}), args.upload_roots)

    assert settings.upload_roots == (pictures, desktop)


def test_a_relative_upload_root_is_refused_naming_the_flag() -> None:
    with pytest.raises(ConfigurationError, match=r"--upload-roots: .*absolute path"):
        with_upload_roots(Settings.from_env({}), ["Pictures"])


def test_the_manifest_matches_the_projects_version_and_python() -> None:
    project = pyproject()["project"]

    assert manifest()["version"] == project["version"]
    assert manifest()["name"] == project["name"]
    assert manifest()["license"] == project["license"]
    assert manifest()["compatibility"]["runtimes"]["python"] == project["requires-python"]
    assert manifest()["server"]["type"] == "uv"
    assert (ROOT / manifest()["server"]["entry_point"]).is_file()
    assert (ROOT / manifest()["icon"]).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
