"""The dashboard as users see it: a real `skippy serve` process on a store this session trained (both agents,
a drift check with its Evidently report, a small sweep), driven by Debian's Chromium through Playwright.

Outside CI a machine without /usr/bin/chromium skips these tests; in CI (`CI=true`, `.ci/run` installs it)
they fail instead."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops.auth import create_key
from mlops.data.generate import generate_market
from mlops.pipeline.drift.service import check_drift
from mlops.pipeline.retrain import retrain
from mlops.pipeline.sweeps import sweep
from mlops.settings import AGENTS, Settings
from mlops.stores import init_stores
from tests.conftest import make_settings
from tests.live import Server

CHROMIUM = "/usr/bin/chromium"
# As this machine's probe started it: no sandbox as root, and nothing that calls out to the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROLES = ("viewer", "operator", "admin")
SWEEP_GRID = {"learning_rate": [0.003, 0.01], "hidden_units": [8, 16]}


def require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI installs it")


@dataclass
class Dashboard:
    settings: Settings
    server: Server
    keys: dict[str, str]
    sweep_id: int
    check_id: str

    @property
    def url(self) -> str:
        return f"{self.server.url}/mlops"

    def login(self, page: Any, role: str = "admin", path: str = "/") -> None:
        """Log in through the login page, as a person does, and land on `path`."""
        page.goto(f"{self.url}{path}")
        page.fill("#key", self.keys[role])
        page.click("#login-button")
        page.wait_for_selector("#whoami", timeout=30_000)


def logged_in(dashboard: Dashboard, role: str, csrf: bool = True) -> httpx.Client:
    """An HTTP client holding a session of `role`, cookies as the login page sets them, and (unless `csrf` is
    False) the session's CSRF token in the `X-CSRFToken` header, as Dash's renderer sends it: forged callback
    requests are posted with it."""
    client = httpx.Client(base_url=dashboard.server.url, timeout=30)
    response = client.post("/mlops/login", data={"key": dashboard.keys[role], "next": "/mlops/alerts"})
    assert response.status_code == 303 and response.headers["location"] == "/mlops/alerts"
    if csrf:
        client.headers["X-CSRFToken"] = client.cookies["_csrf_token"]
    return client


def callback(
    outputs: list[tuple[str, str]], inputs: list[tuple[str, str, Any]], state: Sequence[tuple[str, str, Any]] = ()
) -> dict[str, Any]:
    """A Dash callback request as the renderer sends it (a forged one is built the same way): a callback with
    one output names it plainly, one with several as `..a.x...b.y..`."""
    specs = [{"id": i, "property": p} for i, p in outputs]
    single = len(outputs) == 1
    return {
        "output": f"{outputs[0][0]}.{outputs[0][1]}"
        if single
        else ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": specs[0] if single else specs,
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }


def confirm(page: Any, button: str) -> str:
    """Click a confirmed control, accept its dialog; the dialog's message."""
    seen: list[str] = []

    def accept(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_event("dialog"):
        page.click(button)
    return seen[0]


def build_store(settings: Settings) -> tuple[int, str]:
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1200)
    for agent in AGENTS:
        assert retrain(settings, actor="test", agent=agent).status == "succeeded"
    check = check_drift(settings, actor="test", agent="market_insight")
    record = sweep(settings, actor="test", agent="market_insight", grid=SWEEP_GRID, workers=1)
    return record.id, check.check_id


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    require_chromium()
    settings = make_settings(tmp_path_factory.mktemp("dashboard"), drift_report=True)
    sweep_id, check_id = build_store(settings)
    keys = {role: create_key(settings, name=f"{role}-key", role=role, actor="test").key for role in ROLES}
    server = Server(settings, keys["admin"], SKIPPY_DASHBOARD_REFRESH_SECONDS="3")
    try:
        yield Dashboard(settings, server, keys, sweep_id, check_id)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Console:
    """What the browser reported: console errors and uncaught page errors."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    """A fresh browser context (no cookies) at 1440×900, recording console errors."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.on("console", lambda m: console.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: console.errors.append(f"page error: {e}"))
    try:
        yield tab
    finally:
        context.close()
