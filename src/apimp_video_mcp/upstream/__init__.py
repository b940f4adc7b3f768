"""The APIMP side: the HTTP client, its pure retry rules, capped answers, multipart bodies and
image uploads.

Nothing here knows about MCP. `client.ApimpClient` is the one door to APIMP; `retry` decides
when a request may be repeated; `answers` reads an answer only up to its cap; `multipart` and
`uploads` turn local images into hosted URLs.
"""
