"""apimp-video-mcp: an MCP server that generates videos (Veo 3, Sora 2) through the APIMP task API.

The package reads top to bottom as the design: `defaults` and `config` (settings), `errors`,
`catalog` and `models` (what APIMP accepts and answers), `retry` and `client` (the HTTP side),
`polling` and `downloads` (waiting and saving), `local_files`, `multipart` and `uploads` (local
images turned into hosted URLs, safely), `service` (the plain video service), `results` (what tools
answer), `schema` and `server` (the MCP face), `player` and `apps` (the live player view for hosts
that render MCP Apps; the page itself is `ui/player.html`), `simulator` and `simulator_uploads` (a
local APIMP) and `cli`.
"""

from importlib.metadata import version

__version__ = version("apimp-video-mcp")

__all__ = ["__version__"]
