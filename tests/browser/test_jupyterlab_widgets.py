"""The widgets in a real JupyterLab, driven through Chromium.

JupyterLab runs on 127.0.0.1 with a random port and token, in a temporary
root directory and a temporary Jupyter configuration. The test opens
tests/notebooks/widgets.ipynb there, runs every cell, then clicks a layer, a
filter, a path filter and a bar, and checks what the tree, the history and
the charts show. Finally it saves the notebook, exports it with nbconvert
and checks that the export shows the widgets' static HTML.

Screenshots go to test-output/screenshots/ for a person to look at.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from report_images import write_large_image
from widget_images import write_after_image, write_small_image

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "widgets.ipynb"
LARGE_NOTEBOOK = NOTEBOOKS / "large_explorer.ipynb"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
START_TIMEOUT = 90
WAIT_MS = 60_000


@dataclass
class Lab:
    """A running JupyterLab server and where its files are."""

    url: str
    token: str
    root: Path
    log: Path

    def page_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(lab: Lab, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"JupyterLab exited with {server.returncode}:\n"
                + lab.log.read_text()[-3000:]
            )
        try:
            with urllib.request.urlopen(
                f"{lab.url}/api/status?token={lab.token}", timeout=5
            ):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT} s")


def _write_config(config: Path) -> None:
    (config / "labconfig").mkdir(parents=True)
    # The news pop-up would cover part of the page in screenshots.
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": disabled})
    )


def _lab_command(root: Path, port: int, token: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, _chromium: Any) -> Iterator[Lab]:
    """JupyterLab serving a copy of the widgets notebook and two test images."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    root.mkdir()
    for notebook in (NOTEBOOK, LARGE_NOTEBOOK):
        shutil.copy(notebook, root / notebook.name)
    small = write_small_image(base / "small.tar")
    after = write_after_image(base / "after.tar")
    large = write_large_image(base / "large.tar")
    _write_config(base / "config")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "LAYERLAB_WIDGET_IMAGE": f"docker-archive:{small}",
        "LAYERLAB_WIDGET_AFTER": f"docker-archive:{after}",
        "LAYERLAB_WIDGET_LARGE": f"oci-archive:{large}",
    }

    port, token = _free_port(), secrets.token_hex(16)
    log = base / "jupyterlab.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            _lab_command(root, port, token), env=env, stdout=output, stderr=output
        )
    state = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        _wait_ready(state, server)
        yield state
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


PAGE_ERRORS: list[str] = []


def _run_notebook(page: Any, lab: Lab, name: str, last_output: str) -> None:
    """Open notebook ``name``, run every cell, wait for ``last_output`` rows."""
    page.goto(lab.page_url(name), wait_until="load", timeout=WAIT_MS)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=WAIT_MS)
    _accept_kernel(page)
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=WAIT_MS
    )
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # Cells far below the view may be laid out only when scrolled to, so
    # wait for the rows to exist rather than to be visible.
    page.wait_for_selector(f"{last_output} tbody tr", state="attached", timeout=WAIT_MS)


@pytest.fixture(scope="module")
def notebook(lab: Lab, _chromium: Any) -> Iterator[Any]:
    """The widgets notebook opened in JupyterLab with every cell run.

    The tests below share this page and run in file order: each starts from
    the state the one before left.
    """
    page = _chromium.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
    _run_notebook(page, lab, NOTEBOOK.name, ".ll-diff")
    yield page
    page.close()


def _accept_kernel(page: Any) -> None:
    # JupyterLab may ask which kernel to start for a notebook it opens for
    # the first time; the notebook's own kernelspec is preselected.
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        accept.wait_for(timeout=10_000)
    except PlaywrightTimeout:  # no dialog: the kernel started directly
        return
    accept.click()


# Selectors of the two outputs, and helpers that read what they show.
EXPLORER = ".jp-OutputArea-output:has(.ll-tree)"
COMPARE = ".jp-OutputArea-output:has(.ll-diff)"


def tree_keys(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        ".ll-tree tbody tr", "rows => rows.map(row => row.dataset.key)"
    )


def wait_tree(page: Any, keys: list[str]) -> None:
    """Wait until the tree shows exactly ``keys``; on a timeout, show the diff."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "keys => JSON.stringify([...document.querySelectorAll("
            "'.ll-tree tbody tr')].map(row => row.dataset.key)) === "
            "JSON.stringify(keys)",
            arg=keys,
            timeout=WAIT_MS,
        )
    except PlaywrightTimeout:
        assert tree_keys(page) == keys
        raise


def cell_texts(page: Any, table: str, column: int) -> list[str]:
    return page.eval_on_selector_all(
        f"{table} tbody tr",
        f"rows => rows.map(row => row.cells[{column}].textContent.trim())",
    )


def chart_title(page: Any) -> str:
    return page.locator(f"{EXPLORER} .js-plotly-plot .gtitle").text_content() or ""


def wait_chart_title(page: Any, text: str) -> None:
    page.wait_for_function(
        "text => { const title = document.querySelector("
        "'.jp-OutputArea-output .js-plotly-plot .gtitle');"
        " return title && title.textContent.includes(text); }",
        arg=text,
        timeout=WAIT_MS,
    )
    assert text in chart_title(page)


def treemap_labels(page: Any) -> str:
    return page.locator(f"{EXPLORER} .treemaplayer").text_content() or ""


def button(page: Any, scope: str, label: str) -> Any:
    return page.locator(f"{scope} button.widget-toggle-button", has_text=label).first


def screenshot(page: Any, name: str, selector: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    element = page.locator(selector)
    element.scroll_into_view_if_needed()
    element.screenshot(path=str(path))
    return path


def test_widgets_render(notebook: Any) -> None:
    page = notebook
    assert page.locator("text=Error displaying widget").count() == 0
    assert page.locator(".ll-layers tbody tr").count() == 4
    assert page.locator(".ll-layers tr.ll-selected").get_attribute("data-key") == "3"
    wait_tree(page, ["app", "usr"])
    wait_chart_title(page, "layer 3, changes: 5 entries, 158.0 kB")
    assert page.locator(f"{EXPLORER} .barlayer .point").count() >= 4
    assert "big.bin" in treemap_labels(page)
    assert PAGE_ERRORS == []
    screenshot(page, "widgets-explorer", EXPLORER)


def test_click_layer(notebook: Any) -> None:
    page = notebook
    page.locator(".ll-layers tbody tr[data-key='1']").click()
    wait_tree(page, ["usr", "var", "etc"])
    assert cell_texts(page, ".ll-tree", 2) == ["110.0 kB", "60.0 kB", "170 B"]
    wait_chart_title(page, "layer 1, changes: 9 entries, 170.2 kB")
    assert "tmp.dat" in treemap_labels(page)
    screenshot(page, "widgets-explorer-layer-1", EXPLORER)


def test_expand_and_history(notebook: Any) -> None:
    page = notebook
    page.locator(".ll-tree tbody tr[data-key='var'] .ll-toggle").click()
    wait_tree(page, ["usr", "var", "var/cache", "etc"])
    page.locator(".ll-tree tbody tr[data-key='var/cache'] .ll-toggle").click()
    wait_tree(page, ["usr", "var", "var/cache", "var/cache/tmp.dat", "etc"])

    page.locator(".ll-tree tbody tr[data-key='var/cache/tmp.dat']").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.ll-history tbody tr').length === 1"
    )
    assert cell_texts(page, ".ll-history", 1) == ["added"]
    assert cell_texts(page, ".ll-history", 5) == ["2"]  # hidden by layer 2


def test_toggle_filter(notebook: Any) -> None:
    page = notebook
    button(page, EXPLORER, "unchanged").click()
    # Layer 1 without its unchanged entries: passwd, tool, libnew.so, tmp.dat.
    wait_chart_title(page, "layer 1, changes: 4 entries, 170.1 kB")
    rows = dict(zip(tree_keys(page), cell_texts(page, ".ll-tree", 1)))
    assert rows["etc"] == ""
    assert rows["usr"] == ""
    assert cell_texts(page, ".ll-tree", 2)[-1] == "120 B"
    screenshot(page, "widgets-explorer-filtered", EXPLORER)


def test_path_filter(notebook: Any) -> None:
    page = notebook
    field = page.locator(f"{EXPLORER} input[placeholder^='path filter']")
    field.fill("*.so")
    field.press("Enter")
    wait_chart_title(page, "layer 1, changes: 1 entry, 80.0 kB")
    wait_tree(page, ["usr"])
    page.locator(".ll-tree tbody tr[data-key='usr'] .ll-toggle").click()
    wait_tree(page, ["usr", "usr/lib"])
    page.locator(".ll-tree tbody tr[data-key='usr/lib'] .ll-toggle").click()
    wait_tree(page, ["usr", "usr/lib", "usr/lib/libnew.so"])
    labels = treemap_labels(page)
    assert "libnew.so" in labels
    assert "tmp.dat" not in labels
    screenshot(page, "widgets-explorer-path-filter", EXPLORER)


def test_click_waterfall_bar(notebook: Any) -> None:
    page = notebook
    field = page.locator(f"{EXPLORER} input[placeholder^='path filter']")
    field.fill("")
    field.press("Enter")
    button(page, EXPLORER, "unchanged").click()
    wait_chart_title(page, "layer 1, changes: 9 entries")
    # The first trace's bars are the layers' visible bytes, top to bottom.
    bars = page.locator(f"{EXPLORER} .barlayer .trace").first.locator(".point")
    # plotly's drag layer lies over the bars and receives the pointer, as it
    # does for a person's click, so click at the bar's place on the page.
    bar = bars.nth(3)
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_chart_title(page, "layer 3, changes: 5 entries, 158.0 kB")
    assert page.locator(".ll-layers tr.ll-selected").get_attribute("data-key") == "3"
    assert tree_keys(page)[0] == "app"


def test_compare_view(notebook: Any) -> None:
    page = notebook
    assert cell_texts(page, ".ll-diff", 0) == ["/app/main.py", "/app/extra.txt"]
    button(page, COMPARE, "unchanged").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.ll-diff tbody tr').length === 15"
    )
    page.locator(f"{COMPARE} select").nth(2).select_option(label="/etc")
    page.wait_for_function(
        "() => document.querySelectorAll('.ll-diff tbody tr').length === 3"
    )
    assert sorted(cell_texts(page, ".ll-diff", 0)) == [
        "/etc",
        "/etc/hosts",
        "/etc/passwd",
    ]
    status = page.locator(f"{COMPARE} .widget-html").first.inner_text()
    assert "1 added, 0 removed, 1 modified, 0 metadata, 13 unchanged" in status
    screenshot(page, "widgets-compare", COMPARE)


def test_html_export_is_static(notebook: Any, lab: Lab, _chromium: Any) -> None:
    page = notebook
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.jp-mod-dirty')", timeout=WAIT_MS
    )
    saved = lab.root / NOTEBOOK.name
    exported = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(saved)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    html_path = saved.with_suffix(".html")
    text = html_path.read_text()
    assert "Static view of layerlab.widgets.LayerExplorer" in text
    assert "Static view of layerlab.widgets.CompareView" in text

    static = _chromium.new_page()
    try:
        static.goto(html_path.as_uri(), wait_until="load")
        assert static.locator("text=Error displaying widget").count() == 0
        assert static.locator(".layerlab-static svg rect").count() >= 4
        assert static.locator(".layerlab-static table.ll-static").count() >= 3
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        static.screenshot(path=str(SCREENSHOTS / "widgets-export.png"), full_page=True)
    finally:
        static.close()


def test_large_image_stays_responsive(lab: Lab, _chromium: Any) -> None:
    page = _chromium.new_page()
    try:
        _run_notebook(page, lab, LARGE_NOTEBOOK.name, ".ll-tree")
        wait_chart_title(page, "layer 0, changes: 101,002 entries, 29.9 MB")
        wait_tree(page, ["usr"])

        started = time.monotonic()
        page.locator(".ll-tree tbody tr[data-key='usr'] .ll-toggle").click()
        wait_tree(page, ["usr", "usr/share"])
        page.locator(".ll-tree tbody tr[data-key='usr/share'] .ll-toggle").click()
        # usr/share has 500 directories: 200 lines, then one "more" line.
        page.wait_for_function(
            "() => document.querySelectorAll('.ll-tree tbody tr').length === 203",
            timeout=WAIT_MS,
        )
        expanded = time.monotonic() - started
        more = page.locator(".ll-tree tbody tr.ll-more")
        assert more.inner_text().startswith("… 300 more")

        started = time.monotonic()
        page.locator(".ll-layers tbody tr[data-key='1']").click()
        wait_chart_title(page, "layer 1, changes: 2,000 entries")
        selected = time.monotonic() - started
        # Generous bounds, for a busy two-core machine: the kernel's own
        # work is about 15 ms for the tree and 0.1 to 0.5 s for the treemap.
        assert expanded < 20
        assert selected < 20
        screenshot(page, "widgets-explorer-large", EXPLORER)
    finally:
        page.close()
