"""The player view in a real browser: headless Chromium, our fake host, the real server and simulator.

What is asserted is what a person sees: the task's model, prompt and id; the progress bar moving
while the task renders; a video that actually plays (its current time advances); the saved copy
taking over when the host's Content-Security-Policy blocks the result URL; a failed task's error;
an expired link. A screenshot of each state goes to test-artifacts/.

Driven with Playwright's async API because it runs on the same asyncio loop as the in-process
server and the fake host, so one test holds all three with no threads; it launches Debian's
Chromium (`executable_path`), never a browser of its own. Without Chromium these tests skip
locally, and FAIL under CI (CI=true): .ci/install-browser.sh installs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from apimp_video_mcp.server import build_server
from tests.support import Upstream, fast_settings, structured
from tests.view.fake_host import CspMode, running_host

if TYPE_CHECKING:
    from playwright.async_api import Browser, Frame, Page

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The flags a closed network needs (no background connections that would be refused), headless.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # every wait on the page is bounded; the tasks here take a few seconds at most
LONG_TASK_SECONDS = 30.0  # a task the test ends itself (queued for its first 8 %)
VEO = "veo-3.1-fast-generate-preview"
PROMPT = "a paper boat drifting down a rain-soaked street, golden hour"


def chromium_executable() -> str | None:
    """APIMP_TEST_CHROMIUM, else Debian's chromium on PATH."""
    return os.environ.get("APIMP_TEST_CHROMIUM") or shutil.which("chromium")


def require_browser() -> str:
    """Chromium and Playwright, or a skip (locally) or a failure (CI=true, where they must exist)."""
    executable = chromium_executable()
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[test]')")
    if executable is None:
        missing.append("Chromium (run .ci/install-browser.sh: Debian's chromium package)")
    if missing:
        message = "the browser tests need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert executable is not None
    return executable


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the session. Playwright starts it with a fresh --user-data-dir of its own
    (a new temporary profile, removed at exit); each test gets a new context: no shared cache."""
    executable = require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class HostSession:
    """One page of the fake host, showing the view, over a server wired to the simulator."""

    page: Page
    port: int
    client: Client
    upstream: Upstream

    async def open(self, *, csp: CspMode = "declared", theme: str = "light", width: int = 560) -> Frame:
        """Load the host page; the view is mounted and initialized when this returns."""
        await self.page.set_viewport_size({"width": width + 32, "height": 900})
        view_origin = f"http://localhost:{self.port}"
        await self.page.goto(
            f"http://127.0.0.1:{self.port}/?view_origin={view_origin}&csp={csp}&theme={theme}&width={width}"
        )
        await self.page.evaluate("() => host.ready")
        frame = self.page.frame(url=lambda url: url.startswith(f"{view_origin}/view"))
        assert frame is not None
        return frame

    async def run_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The model's call, made by the host page: input to the view, call, result to the view."""
        result: dict[str, Any] = await self.page.evaluate(
            "([name, args]) => host.runTool(name, args)", [name, arguments]
        )
        return result

    async def start_tool(self, name: str, arguments: dict[str, Any]) -> None:
        """As run_tool, without waiting for the call to end (see finish_tool)."""
        await self.page.evaluate(
            "([name, args]) => { host.call = host.runTool(name, args); }", [name, arguments]
        )

    async def finish_tool(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate("() => host.call")
        return result

    async def submit(self, **input_: Any) -> str:
        """A task submitted outside the view (an earlier call in the conversation)."""
        result = await self.client.call_tool(
            "submit_video", {"model": VEO, "input": {"prompt": PROMPT, **input_}}
        )
        task_id = structured(result)["task_id"]
        assert isinstance(task_id, str)
        return task_id

    async def screenshot(self, name: str, frame: Frame) -> Path:
        """The view as it stands: transitions cut short, so the bar is drawn at its current value."""
        await frame.add_style_tag(content="* { transition: none !important; animation: none !important; }")
        await frame.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => resolve(null)))")
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"player-{name}.png"
        await self.page.locator("#view").screenshot(path=str(path))
        return path


@pytest.fixture
async def host(browser: Browser, upstream: Upstream, tmp_path: Path) -> AsyncIterator[HostSession]:
    settings = fast_settings(upstream.base_url, tmp_path / "videos", ui_poll_interval_seconds=0.25)
    extension = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    async with (
        Client(build_server(settings), extensions=[extension]) as client,
        running_host(client) as port,
    ):
        context = await browser.new_context()
        page = await context.new_page()
        uncaught: list[str] = []  # a script error in the host page or the view fails the test
        page.on("pageerror", lambda error: uncaught.append(str(error)))
        try:
            yield HostSession(page, port, client, upstream)
        finally:
            await context.close()
        assert uncaught == []


async def wait_for_state(frame: Frame, state: str) -> None:
    await frame.wait_for_function(
        "state => document.getElementById('app').dataset.state === state", arg=state, timeout=WAIT_MS
    )


async def wait_for_playback(frame: Frame, source: str) -> None:
    await frame.wait_for_function(
        "source => document.getElementById('app').dataset.playback === source", arg=source, timeout=WAIT_MS
    )


async def text(frame: Frame, element_id: str) -> str:
    content = await frame.locator(f"#{element_id}").text_content()
    return content or ""


async def play(frame: Frame) -> dict[str, float]:
    """Play the video for a moment, muted (as autoplay rules allow): it plays if time advances."""
    result: dict[str, float] = await frame.evaluate(
        """async () => {
            const video = document.getElementById("video");
            video.muted = true;
            await video.play();
            await new Promise((resolve) => setTimeout(resolve, 400));
            video.pause();
            return { readyState: video.readyState, duration: video.duration, currentTime: video.currentTime };
        }"""
    )
    return result


async def record_progress(frame: Frame) -> None:
    """Keep every value the progress bar shows, as it is drawn."""
    await frame.evaluate(
        """() => {
            window.seenProgress = [];
            const bar = document.getElementById("bar");
            new MutationObserver(() => {
                const value = bar.getAttribute("aria-valuenow");
                if (value !== null) window.seenProgress.push(Number(value));
            }).observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
        }"""
    )


async def test_submit_shows_the_task_and_wait_shows_progress_then_plays_the_result_link(
    host: HostSession,
) -> None:
    # Long enough that the task never ends before the test has seen it run, on however slow a
    # machine: the test ends it itself (finish_now) once the bar has moved.
    host.upstream.simulator.task_duration_seconds = LONG_TASK_SECONDS
    submit_view = await host.open(csp="declared", theme="light")

    submitted = await host.run_tool("submit_video", {"model": VEO, "input": {"prompt": PROMPT}})

    task_id = submitted["structuredContent"]["task_id"]
    assert await text(submit_view, "model") == VEO
    assert await text(submit_view, "prompt") == PROMPT
    assert await text(submit_view, "task-id") == task_id
    await wait_for_state(submit_view, "running")

    # The model waits next; the host shows a view beside that call too, which polls meanwhile.
    frame = await host.open(csp="declared", theme="light")
    await record_progress(frame)
    await host.start_tool("wait_for_video", {"task_id": task_id})
    await frame.wait_for_function(
        "() => Number(document.getElementById('bar').getAttribute('aria-valuenow')) > 5", timeout=WAIT_MS
    )
    assert await frame.locator("#app").get_attribute("data-state") == "running"
    assert await text(frame, "task-id") == task_id
    assert await text(frame, "prompt") == PROMPT, "the journal tells the view what the call did not"
    assert await text(frame, "elapsed") != ""
    assert await text(frame, "estimate") == "Estimate unavailable"  # no earlier task to go by
    await host.screenshot("running", frame)
    await frame.wait_for_function(
        "() => new Set(window.seenProgress.filter((value) => value < 100)).size >= 2", timeout=WAIT_MS
    )
    host.upstream.simulator.finish_now(task_id)

    waited = await host.finish_tool()
    [saved] = waited["structuredContent"]["saved_videos"]
    await wait_for_state(frame, "finished")
    await wait_for_playback(frame, "direct")
    progress: list[float] = await frame.evaluate("() => window.seenProgress")
    running = sorted(set(progress) - {100})
    assert len(running) >= 2, f"the bar should move while the task runs, saw {progress}"
    assert progress == sorted(progress), "the bar never goes back"
    assert progress[-1] == 100
    played = await play(frame)
    assert played["readyState"] >= 2
    assert played["duration"] > 0
    assert played["currentTime"] > 0
    assert "result link" in await text(frame, "source-note")
    assert saved["path"] in await text(frame, "saved")
    await host.screenshot("finished", frame)

    await frame.locator("#open-link").click()
    await host.page.wait_for_function("() => host.log.openedLinks.length === 1", timeout=WAIT_MS)
    [opened] = await host.page.evaluate("() => host.log.openedLinks")
    assert opened.startswith(host.upstream.base_url)
    assert f"{task_id}.mp4" in opened


async def test_a_host_that_blocks_the_result_link_plays_the_saved_copy(host: HostSession) -> None:
    task_id = await host.submit()
    frame = await host.open(csp="default", theme="dark")

    waited = await host.run_tool("wait_for_video", {"task_id": task_id})

    [saved] = waited["structuredContent"]["saved_videos"]
    await wait_for_state(frame, "finished")
    await wait_for_playback(frame, "resource")
    played = await play(frame)
    assert played["duration"] > 0
    assert played["currentTime"] > 0
    assert "security policy blocked the result link" in await text(frame, "source-note")
    assert saved["path"] in await text(frame, "saved")
    calls = await host.page.evaluate("() => host.log.viewCalls.map((call) => call.method)")
    assert "resources/read" in calls
    background = await frame.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(27, 28, 32)", "the view follows the host's dark theme"
    await host.screenshot("fallback-dark", frame)


async def test_a_failed_task_shows_its_error_even_at_a_narrow_width(host: HostSession) -> None:
    host.upstream.simulator.fail_next_tasks(1, "The prompt was blocked by the safety filter.")
    frame = await host.open(width=320)

    await host.run_tool("submit_video", {"model": VEO, "input": {"prompt": PROMPT}})

    await wait_for_state(frame, "failed")
    assert await frame.locator("#problem").is_visible()
    assert await text(frame, "problem-text") == "The prompt was blocked by the safety filter."
    assert not await frame.locator("#player").is_visible()
    overflow = await frame.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, "nothing sticks out sideways at 320 px"
    await host.screenshot("failed-narrow", frame)


async def test_an_expired_link_with_no_saved_copy_says_so(host: HostSession) -> None:
    task_id = await host.submit()
    host.upstream.simulator.finish_now(task_id)
    host.upstream.simulator.expire_files()
    frame = await host.open()

    await host.run_tool("get_status", {"task_id": task_id})  # get_status saves nothing

    await wait_for_state(frame, "expired")
    assert await text(frame, "problem-title") == "The video link has expired"
    assert not await frame.locator("#open-link").is_visible(), "an expired link is not offered"
    assert not await frame.locator("#player").is_visible()
    await host.screenshot("expired", frame)
