"""server.json, the project's entry for the MCP Registry, agrees with the package it describes.

The registry publishes its JSON Schema only on its own site, not in any package on PyPI or npm,
and CI reaches nothing else; so these tests check the fields that schema constrains (name
pattern, description length, exact versions, the package's transport and variables) and, above
all, that the entry tells the truth about this package: its name, version, variables, secrets
and defaults. The registry itself validates the schema when the entry is published.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from apimp_video_mcp import defaults
from apimp_video_mcp.config import ENVIRONMENT_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
# The registry's rules for a server name and a description (its schema's pattern and maxLength).
SERVER_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")
DESCRIPTION_MAX_CHARS = 100


def entry() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "server.json").read_text())
    return loaded


def project() -> dict[str, Any]:
    loaded: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return loaded


def package() -> dict[str, Any]:
    (only,) = entry()["packages"]
    assert isinstance(only, dict)
    return only


def variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in package()["environmentVariables"]}


def test_the_entry_names_the_published_schema_and_fits_its_limits() -> None:
    assert entry()["$schema"] == PUBLISHED_SCHEMA
    assert SERVER_NAME.fullmatch(entry()["name"])
    assert 0 < len(entry()["description"]) <= DESCRIPTION_MAX_CHARS


def test_the_entry_describes_this_package_at_this_version() -> None:
    assert entry()["version"] == project()["version"]
    assert package()["registryType"] == "pypi"
    assert package()["identifier"] == project()["name"]
    assert package()["version"] == project()["version"]
    assert package()["transport"] == {"type": "stdio"}


def test_the_readme_proves_the_package_belongs_to_the_entry() -> None:
    """The registry checks a PyPI package's description (our README) for this marker."""
    assert f"mcp-name: {entry()['name']}" in (ROOT / "README.md").read_text()


def test_its_variables_are_the_servers_and_only_the_key_is_secret_and_required() -> None:
    assert set(variables()) <= set(ENVIRONMENT_VARIABLES.values())
    assert {"APIMP_API_KEY", "APIMP_DOWNLOAD_DIR", "APIMP_UPLOAD_ROOTS", "APIMP_BASE_URL"} <= set(variables())
    assert [name for name, variable in variables().items() if variable.get("isSecret")] == ["APIMP_API_KEY"]
    assert [name for name, variable in variables().items() if variable.get("isRequired")] == ["APIMP_API_KEY"]
    assert all(variable.get("description") for variable in variables().values())


def test_the_defaults_it_states_are_the_servers() -> None:
    assert variables()["APIMP_BASE_URL"]["default"] == defaults.DEFAULT_BASE_URL
    assert "default" not in variables()["APIMP_API_KEY"]
