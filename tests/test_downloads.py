"""Saved videos are named for their task, with the extension their URL gives when it is a video's."""

from __future__ import annotations

import pytest

from apimp_video_mcp.downloads.files import video_filename
from apimp_video_mcp.models import VIDEO_EXTENSIONS, TaskFile


@pytest.mark.parametrize("extension", VIDEO_EXTENSIONS)
def test_a_video_url_keeps_its_extension_and_counts_as_a_video(extension: str) -> None:
    url = f"https://cdn.example.com/v/clip{extension.upper()}?sig=1"

    assert video_filename("task_1", url, 0) == f"task_1{extension}"
    assert TaskFile(file_url=url).is_video


def test_an_unknown_extension_is_saved_as_mp4_and_a_second_video_is_numbered() -> None:
    assert video_filename("task_1", "https://cdn.example.com/v/opaque-id", 0) == "task_1.mp4"
    assert video_filename("task_1", "https://cdn.example.com/v/b.webm", 1) == "task_1-2.webm"
