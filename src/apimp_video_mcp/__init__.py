"""apimp-video-mcp: an MCP server that generates videos (Google Veo 3) through the APIMP task API.

The folders are the design. At the top sits the plain domain's core, which knows nothing of MCP:
`defaults` and `config` (settings), `errors`, `catalog` and `models` (what APIMP accepts and
answers), `json_limits` (bounds on what callers send), `local_files` (which local images may be
read), `results` (what the service answers), `background` (work that lives as long as a block),
`service` (the video service itself, the facade the tools call) and the paths it wires together:
`submits` (journaled first, sent once), `waits` (to a task's end within a deadline) and `lookups`
(a principal's tasks in the journal and at APIMP). Its larger parts have folders: `upstream/` (the
APIMP client, retry rules, uploads), `store/` (the task journal behind its `TaskStore` interface,
SQLite or PostgreSQL), `polling/` (pollers, schedule, shared status, cluster coordination),
`downloads/` (saving result videos safely), `costs/` (prices and budgets) and `access/`
(principals and keys). `server/` is the MCP face over the service, `view/` the live player for
hosts that render MCP Apps, `simulator/` a local APIMP, and `cli` starts it all.
"""

from importlib.metadata import version

__version__ = version("apimp-video-mcp")

__all__ = ["__version__"]
