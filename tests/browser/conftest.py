"""Browser fixtures: the machine's Chromium driven by Playwright, one browser per module, a fresh
context per test that records every request and refuses any that leaves the loopback address."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from tests.harness import LiveServer, start_server
from vidmorph.config import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SLOW = "tests.engines.fixtures:slow"
#: anything that is not the loopback server: aborted before it leaves the browser
ELSEWHERE = re.compile(r"^(?!http://127\.0\.0\.1[:/])[a-z]+://")
TIMEOUT_MS = 30_000
expect.set_options(timeout=15_000)  # a busy 2-core machine: generous, never a sleep


@dataclass
class Browsing:
    """A page plus what it did: every request URL, and CSP violations or uncaught errors."""

    page: Page
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def assert_only_from(self, base: str) -> None:
        """Every request went to `base` (the server's origin); nothing was refused or broken."""
        assert self.requests, "the page made no requests at all"
        elsewhere = [url for url in self.requests if not url.startswith(f"{base}/")]
        assert not elsewhere, f"requests to other origins: {elsewhere}"
        assert not self.refused, f"requests that tried to leave loopback: {self.refused}"
        assert not self.problems, f"page errors: {self.problems}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need the Debian package "
            "(`apt-get install -y chromium`)."
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def browsing(browser: Browser) -> Iterator[Browsing]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    seen = Browsing(page)

    def refuse(route: Route) -> None:
        seen.refused.append(route.request.url)
        route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            seen.problems.append(message.text)

    context.route(ELSEWHERE, refuse)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.problems.append(f"uncaught: {error}"))
    try:
        yield seen
    finally:
        context.close()


@pytest.fixture
def slow_server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    """A real server whose engine takes ~0.15 s per 4 frames: a task runs for a few seconds."""
    with start_server(make_settings(engine=SLOW, events_poll_s=0.05)) as live:
        yield live
