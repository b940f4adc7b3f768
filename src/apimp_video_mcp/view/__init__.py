"""The live player view for hosts that render MCP Apps.

`player` is the view's logic over the service (status for the page, estimates, playback
sources), `wiring` registers it with the server (the `ui://` resource, the app-only tool,
`_meta.ui` on the tools), and `ui/player.html` is the page itself.
"""
