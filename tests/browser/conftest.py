"""Browser tests: the real app on a live port, driven by Debian's Chromium through Playwright.

The ``page`` fixture fails its test on any console error, any uncaught page error and any request
to a host other than this machine (such requests are blocked, then reported): gridwatch runs on
intranets, so every script, stylesheet, font and tile must come from gridwatch itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from feed_support import feed_server
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright
from server_support import free_port
from werkzeug.serving import make_server

from server.settings import PROJECT_ROOT, Settings

# Debian's package, never `playwright install`: no browser download at test time.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    # WebGL (MapLibre) on the CPU: SwiftShader through ANGLE, which Chromium only allows when asked.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    # Chromium's own traffic (updates, sync, field trials) would count as requests leaving the machine.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SCREENSHOTS = PROJECT_ROOT / "var" / "test" / "screenshots"


@dataclass
class LiveServer:
    url: str
    app: Flask


@dataclass
class BrowserProblems:
    """What went wrong in the browser during one test; any of it fails the test."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.console_errors or self.page_errors or self.outside_requests)

    def clear(self) -> None:
        self.console_errors.clear()
        self.page_errors.clear()
        self.outside_requests.clear()

    def describe(self) -> str:
        lines = ["the browser reported problems:"]
        lines += [f"  console error: {text}" for text in self.console_errors]
        lines += [f"  page error: {text}" for text in self.page_errors]
        lines += [f"  request leaving the machine (blocked): {url}" for url in self.outside_requests]
        return "\n".join(lines)


PROBLEMS = pytest.StashKey[BrowserProblems]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    # Checked after the test body, so the problems fail the test itself rather than its teardown.
    result = yield
    problems = item.stash.get(PROBLEMS, None)
    if problems:
        pytest.fail(problems.describe(), pytrace=False)
    return result


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test settings, with a port of its own for the change feed that ``live_server`` starts."""
    return Settings(
        database_url=database_url,
        var_dir=tmp_path,
        secret_key="test-secret",
        pool_min_size=1,
        events_port=free_port(),
    )


@pytest.fixture
def live_server(app: Flask, settings: Settings) -> Iterator[LiveServer]:
    """The app from ``create_app(settings)`` on the test database, served on a free local port,
    with the change feed beside it as ``gridwatch serve`` runs it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    with feed_server(settings.database_url, settings.var_dir, port=settings.events_port):
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_problems(request: pytest.FixtureRequest) -> BrowserProblems:
    problems = BrowserProblems()
    request.node.stash[PROBLEMS] = problems
    return problems


@pytest.fixture
def page(browser: Browser, browser_problems: BrowserProblems) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")

    def keep_on_this_machine(route: Route) -> None:
        address = urlsplit(route.request.url)
        if address.scheme == "file" or address.hostname in LOCAL_HOSTS:  # a file on disk is local too
            route.continue_()
        else:
            browser_problems.outside_requests.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", keep_on_this_machine)
    page = context.new_page()

    def record_console_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            source = message.location.get("url")
            browser_problems.console_errors.append(f"{message.text} ({source})" if source else message.text)

    page.on("console", record_console_error)
    page.on("pageerror", lambda error: browser_problems.page_errors.append(str(error)))
    yield page
    context.close()


@pytest.fixture
def screenshot(page: Page):
    """``screenshot(name)`` writes ``var/test/screenshots/<name>.png`` (`make screenshots` publishes some)."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path)
        return path

    return take
