"""The MCP face: the server's tools, resources and lifetime over the plain `VideoService`.

`app` builds the server and its tool adapters, `resources` the `apimp://` resources, `schema`
the published input schemas, and `outcomes` how a tool's result or error reaches the model.
"""

from apimp_video_mcp.server.app import AppContext, build_server, build_tools, serve

__all__ = ["AppContext", "build_server", "build_tools", "serve"]
