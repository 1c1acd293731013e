"""The sandbox served by uvicorn on a loopback port (in a thread of the test process, so a test can also
look at what the Slack stand-in recorded), and a Chromium page driving it: Debian's chromium, never a
browser download."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bot.sandbox import demo
from bot.sandbox.server import Sandbox
from tests.integrations.alertmanager_server import free_port

SCREENSHOTS = os.environ.get("CADENCE_SCREENSHOTS")  # a directory: the README's screenshots are saved there


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class Served:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.url = sandbox.base + "/"
        self.server = uvicorn.Server(
            uvicorn.Config(
                sandbox.web, host="127.0.0.1", port=sandbox.port, log_level="warning", lifespan="on"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the sandbox did not start within 30 s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(self.url + path.lstrip("/"), json=body or {}, timeout=30)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("sandbox") / "sandbox.db"
    sandbox = Sandbox(config=demo.demo_config(), database_url=f"sqlite+aiosqlite:///{db}", port=free_port())
    running = Served(sandbox).start()
    yield running
    running.stop()


@pytest.fixture
def fresh(served: Served) -> Served:
    """The sandbox as on its first start: the demo seeded again, the clock at now."""
    assert served.post("/sandbox/reset").status_code == 200
    return served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped on purpose: Playwright's sync API keeps its event loop marked as running in this
    thread while it is open, which would stop pytest-asyncio's async tests in later modules."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'"
    )
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium: install Debian's chromium package (apt-get install chromium) or set CHROMIUM"
        )
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, fresh: Served) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, timezone_id="Europe/Berlin")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    opened.set_default_timeout(10_000)
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


def screenshot(page: Any, name: str) -> None:
    """Saved for the README when CADENCE_SCREENSHOTS names a directory."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))
