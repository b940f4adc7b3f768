"""The APIMP side: the HTTP client, its pure retry rules, multipart bodies and image uploads.

Nothing here knows about MCP. `client.ApimpClient` is the one door to APIMP; `retry` decides
when a request may be repeated; `multipart` and `uploads` turn local images into hosted URLs.
"""
