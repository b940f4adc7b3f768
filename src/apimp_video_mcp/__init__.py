"""apimp-video-mcp: an MCP server that generates videos (Google Veo 3) through the APIMP task API.

The folders are the design. At the top sits the plain domain, which knows nothing of MCP:
`defaults` and `config` (settings), `errors`, `catalog` and `models` (what APIMP accepts and
answers), `durations` (how long a model's task typically takes), `polling` and `downloads`
(waiting and saving), `local_files` (which local images may be read), `results` (what the
service answers) and `service` (the video service itself).
`upstream/` is the APIMP side (the HTTP client, retry rules, uploads); `store/` is the task
journal behind its `TaskStore` interface. `server/` is the MCP face over the service, `view/` the
live player for hosts that render MCP Apps, `simulator/` a local APIMP, and `cli` starts it all.
"""

from importlib.metadata import version

__version__ = version("apimp-video-mcp")

__all__ = ["__version__"]
