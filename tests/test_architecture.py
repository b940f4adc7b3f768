"""The package's layers, held by a test: the design in the folder tree stays true as code grows.

The plain domain (the top-level modules and the folders of its parts: `upstream/`, `store/`,
`polling/`, `downloads/`, `costs/`, `access/`) knows nothing of MCP or of the
simulator; MCP is spoken only in `server/` and `view/`; the simulator is started only by the CLI
(and by tests and benchmarks, which live outside the package). The service sits above its parts
and above the paths it wires together (`submits`, `waits`, `lookups`): none of them imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import apimp_video_mcp

PACKAGE_ROOT = Path(apimp_video_mcp.__file__).parent
MCP_FACES = ("server", "view")
# The plain domain: the top-level modules and the folders of its parts, none of them MCP.
DOMAIN = ("domain", "upstream", "store", "polling", "downloads", "costs", "access")
# The paths the service wires together: top-level modules beside it, yet below it like its parts.
SERVICE_PATHS = ("submits.py", "waits.py", "lookups.py")


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE_ROOT.rglob("*.py"))


def _layer(path: Path) -> str:
    """The folder under the package a module lives in, or "domain" for a top-level module."""
    relative = path.relative_to(PACKAGE_ROOT)
    if len(relative.parts) == 1:
        return "cli" if relative.stem in ("cli", "__main__") else "domain"
    return relative.parts[0]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
    return names


def _touches(imports: set[str], prefix: str) -> list[str]:
    return sorted(name for name in imports if name == prefix or name.startswith(prefix + "."))


def test_the_layout_has_the_layers_the_readme_describes() -> None:
    layers = {_layer(path) for path in _modules()}
    assert layers == {*DOMAIN, "cli", "server", "view", "simulator"}


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(PACKAGE_ROOT)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    layer = _layer(path)
    imports = _imports(path)
    if layer not in MCP_FACES:
        assert _touches(imports, "mcp") == [], f"{layer} must not speak MCP"
    if layer not in ("simulator", "cli"):
        assert _touches(imports, "apimp_video_mcp.simulator") == [], "only the CLI starts the simulator"
    if layer in DOMAIN:
        for face in (*MCP_FACES, "simulator"):
            assert _touches(imports, f"apimp_video_mcp.{face}") == [], f"the {layer} must not import {face}"
    below_the_service = layer in DOMAIN and layer != "domain"
    if below_the_service or str(path.relative_to(PACKAGE_ROOT)) in SERVICE_PATHS:
        assert _touches(imports, "apimp_video_mcp.service") == [], "the service sits above its parts"


def test_the_service_paths_exist() -> None:
    """The rule above names the service's paths by file: a renamed one must not slip out of it."""
    assert all((PACKAGE_ROOT / name).is_file() for name in SERVICE_PATHS)
