"""A headless Chromium page for the report's browser tests.

The browser is Debian's ``chromium`` (``/usr/bin/chromium`` unless
``LAYERLAB_CHROMIUM`` names another), driven by Playwright. Without it or
without Playwright the tests are skipped, unless ``CI`` is set, where they
fail. Chromium runs with a fresh profile and with background networking,
component updates and sync turned off, so that it reaches no host.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("LAYERLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (install Debian's chromium)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class Browser:
    """A Playwright page with the errors and dialogs it has seen."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: Path, *, timeout_ms: int = 60_000) -> float:
        """Open ``path``, wait until every figure is drawn, return the seconds taken.

        The report marks ``<html data-ready>`` once its tables are filled and
        its figures drawn; the figures are also checked one by one.
        """
        self.page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
        self.page.wait_for_function(
            "() => document.documentElement.dataset.ready", timeout=timeout_ms
        )
        assert self.page.evaluate("() => document.documentElement.dataset.ready") == (
            "true"
        ), self.console_errors
        self.page.wait_for_function(
            "() => { const figures = document.querySelectorAll('.figure');"
            " return figures.length > 0 && [...figures].every("
            "f => f.querySelector('.main-svg')); }",
            timeout=timeout_ms,
        )
        return self.page.evaluate("() => performance.now() / 1000")

    def screenshot(self, name: str, *, selector: str | None = None) -> Path:
        """Save a screenshot of the page, or of one element, under test-output/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if selector is None:
            self.page.screenshot(path=str(path), full_page=True)
        else:
            self.page.locator(selector).screenshot(path=str(path))
        return path


@pytest.fixture(scope="session")
def _chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    problem = _missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run: {problem}", pytrace=False)
        pytest.skip(f"browser tests need Chromium and Playwright: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def browser(_chromium: Any) -> Iterator[Browser]:
    """A fresh page that records console errors and dismisses dialogs."""
    page = _chromium.new_page()
    state = Browser(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            state.console_errors.append(message.text)

    def on_dialog(dialog: Any) -> None:
        state.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: state.console_errors.append(str(error)))
    page.on("dialog", on_dialog)
    yield state
    page.close()
