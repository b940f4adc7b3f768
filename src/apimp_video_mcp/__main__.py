"""`python -m apimp_video_mcp` is the `apimp-video-mcp` command."""

from apimp_video_mcp.cli import main

main()
