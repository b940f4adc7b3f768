"""The Claude Desktop bundle (.mcpb), validated, packed and started the way a host does.

The official CLI (`@anthropic-ai/mcpb`, pinned in bundle/package-lock.json and installed by
`npm ci --prefix bundle`) validates manifest.json and packs the repository; the packed file must
hold exactly the allow-listed files. Then the bundle is unpacked and started as Claude Desktop's
uv runtime starts it: the command, arguments and environment come from the manifest through the
official library's own substitution (bundle/host-config.mjs) with the values a user would enter,
and uv (from PyPI) builds the project and runs it. The SDK's client then lists the tools and makes
a video through it, against the simulator.

Locally these tests are skipped when node, the CLI or uv is missing; under CI=true they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from apimp_video_mcp.downloads.network import allowance_for
from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_simulator
from tests.support import structured, text_of
from tests.support.processes import needed

ROOT = Path(__file__).resolve().parents[1]
TOOLS_DIR = ROOT / "bundle"

# Beside the package source, the bundle holds the manifest and its icon, and what uv needs to
# build the project (pyproject.toml names README.md as its readme). Nothing else.
TOP_LEVEL_FILES = frozenset({"manifest.json", "pyproject.toml", "README.md", "bundle/icon.png"})
# Never in a bundle, whatever the allow-list says: tests, caches, environments, local state, keys.
FORBIDDEN_PATH = re.compile(
    r"(^|/)(tests?|\.venv|venv|node_modules|__pycache__|\.git|\.env[^/]*|\.[a-z]+_cache|dist|build)(/|$)"
    r"|\.(pyc|pyo|sqlite3|log|pem|key|mcpb)$"
)
KEY_LIKE = re.compile(rb"sk-[A-Za-z0-9_-]{16,}")
# What uv needs from this machine's environment to reach PyPI (certificates, proxies).
NETWORK_VARIABLES = frozenset({"SSL_CERT_FILE", "SSL_CERT_DIR", "NO_PROXY", "no_proxy"})


@pytest.fixture(scope="module")
def mcpb() -> str:
    needed(shutil.which("node"), "node (Debian's nodejs)")
    return needed(str(TOOLS_DIR / "node_modules" / ".bin" / "mcpb"), "the mcpb CLI: npm ci --prefix bundle")


@pytest.fixture(scope="module")
def uv() -> str:
    here = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    return needed(here, "uv: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def packed(mcpb: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle, packed from the working tree by the command the README gives."""
    target = tmp_path_factory.mktemp("packed") / "apimp-video-mcp.mcpb"
    done = subprocess.run([mcpb, "pack", str(ROOT), str(target)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def source_files() -> set[str]:
    """The package source as the bundle should carry it: every file under src/ but bytecode."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "src").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
    }


def test_the_manifest_validates_with_the_official_cli(mcpb: str) -> None:
    done = subprocess.run([mcpb, "validate", str(ROOT / "manifest.json")], capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Manifest schema validation passes" in done.stdout
    assert "ERROR" not in done.stdout + done.stderr


def test_the_bundle_holds_the_allow_list_and_nothing_else(packed: Path) -> None:
    with zipfile.ZipFile(packed) as archive:
        names = set(archive.namelist())
        key_like = [name for name in names if KEY_LIKE.search(archive.read(name))]

    assert names == TOP_LEVEL_FILES | source_files()
    assert [name for name in names if FORBIDDEN_PATH.search(name)] == []
    assert key_like == [], "something that looks like an APIMP key was packed"


def host_environment(uv: str, home: Path) -> dict[str, str]:
    """The host's own environment for the process: uv on PATH, a home of the test's own (the
    journal lands there), and this machine's network settings. uv keeps to this interpreter
    rather than downloading one; its package cache is shared between runs. Polls are paced for
    a half-second task rather than for Veo's minutes, as in the other transport tests."""
    network = {
        name: value
        for name, value in os.environ.items()
        if name in NETWORK_VARIABLES or name.upper() in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
    }
    return {
        **network,
        "PATH": os.pathsep.join([str(Path(uv).parent), os.defpath]),
        "HOME": str(home),
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "APIMP_POLL_MIN_INTERVAL": "0.05",
        "APIMP_POLL_MAX_INTERVAL": "0.2",
    }


async def host_config(extension: Path, user_config: dict[str, Any]) -> dict[str, Any]:
    """The server's command, arguments and environment as the official library derives them."""
    done = await anyio.run_process(
        ["node", str(TOOLS_DIR / "host-config.mjs"), str(extension), json.dumps(user_config)], check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    config: dict[str, Any] = json.loads(done.stdout)
    return config


@pytest.mark.anyio
async def test_the_unpacked_bundle_runs_as_the_host_starts_it(
    mcpb: str, uv: str, packed: Path, tmp_path: Path
) -> None:
    extension, home = tmp_path / "extension", tmp_path / "home"
    videos, pictures, elsewhere = tmp_path / "Videos", tmp_path / "Pictures", tmp_path / "elsewhere"
    for folder in (home, pictures, elsewhere):
        folder.mkdir()
        shutil.copy(TOOLS_DIR / "icon.png", folder / "frame.png")
    unpacked = await anyio.run_process([mcpb, "unpack", str(packed), str(extension)], check=False)
    assert unpacked.returncode == 0, unpacked.stdout.decode() + unpacked.stderr.decode()

    async with running_simulator(Simulator(task_duration_seconds=0.5)) as base_url:
        config = await host_config(
            extension,
            {
                "api_key": SIMULATOR_API_KEY,
                "download_dir": str(videos),
                "upload_roots": [str(pictures)],
                "base_url": base_url,
            },
        )
        parameters = StdioServerParameters(
            command=config["command"],
            args=config["args"],
            # The simulator serves its files on loopback, which downloads refuse unless allowed.
            env={
                **host_environment(uv, home),
                "APIMP_DOWNLOAD_ALLOWED_HOSTS": allowance_for(base_url),
                **config["env"],
            },
        )
        # uv builds the project and installs its dependencies first: tens of seconds on a cold cache.
        with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(300):
            async with Client(stdio_client(parameters, errlog=errlog), mode="legacy") as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                submitted = structured(
                    await client.call_tool(
                        "submit_video",
                        {"model": "veo-3.1-fast-generate-preview", "input": {"prompt": "a kite over dunes"}},
                    )
                )
                waited = structured(
                    await client.call_tool(
                        "wait_for_video", {"task_id": submitted["task_id"], "timeout_seconds": 30}
                    )
                )
                allowed = structured(
                    await client.call_tool("upload_image", {"path": str(pictures / "frame.png")})
                )
                refused = await client.call_tool("upload_image", {"path": str(elsewhere / "frame.png")})

    manifest = json.loads((extension / "manifest.json").read_text())
    # A host that runs the uv runtime's entry point itself, rather than mcp_config, gets the same.
    entry_point = await anyio.run_process(
        [uv, "run", "--directory", str(extension), manifest["server"]["entry_point"], "--help"],
        env=host_environment(uv, home),
        check=False,
    )
    assert entry_point.returncode == 0, entry_point.stderr.decode()
    assert b"usage: apimp-video-mcp" in entry_point.stdout
    assert tools == {tool["name"] for tool in manifest["tools"]}
    assert waited["status"] == "finished"
    saved = Path(str(waited["saved_videos"][0]["path"]))
    assert saved.parent == videos
    assert saved.is_file()
    assert allowed["mime_type"] == "image/png"
    assert refused.is_error
    assert str(pictures) in text_of(refused), "the refusal names the folder the user picked"
    assert SIMULATOR_API_KEY not in (tmp_path / "stderr.log").read_text()
