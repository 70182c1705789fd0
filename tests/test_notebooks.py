"""Run every notebook under notebooks/ top to bottom, as a teacher would.

Each notebook is executed by nbclient in a fresh kernel whose working
directory is a temporary one, so files it writes (the quick start's report)
stay out of the repository. A notebook fails the test on any cell error and
on any traceback printed to standard error, which is where IPython reports a
failing display formatter without stopping. The executed notebook is
exported with nbconvert to ``test-output/notebooks/<name>.html`` for review,
and the wall time of each run goes to ``test-output/notebooks/timings.json``.

The scenario notebooks (``1*`` to ``4*``) build images and need the engine;
the quick start and the overlay walkthrough read bundled samples and run
anywhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OUTPUT_DIR = ROOT / "test-output" / "notebooks"

# Seconds one cell may run. The first run on a new machine builds the
# node:22 stand-in inside the first scenario notebook, which takes minutes.
CELL_TIMEOUT = 1500


def _needs_engine(path: Path) -> bool:
    return not path.name.startswith("0")


def _params() -> list:
    return [
        pytest.param(
            path,
            id=path.stem,
            marks=[pytest.mark.engine, pytest.mark.timeout(1800)]
            if _needs_engine(path)
            else [pytest.mark.timeout(600)],
        )
        for path in NOTEBOOKS
    ]


def _execute(path: Path, workdir: Path) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        # Without stored widget state the HTML export shows the widgets'
        # static views, which open offline; stored state needs a CDN script.
        store_widget_state=False,
    )
    started = time.monotonic()
    client.execute()
    return notebook, time.monotonic() - started


def _problems(notebook: nbformat.NotebookNode) -> list[str]:
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(
                    f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
                )
            elif output.get("name") == "stderr" and "Traceback" in output.get(
                "text", ""
            ):
                found.append(
                    f"cell {index} printed a traceback:\n{output['text'][-2000:]}"
                )
    return found


def _export(notebook: nbformat.NotebookNode, name: str) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_notebook_node(notebook)
    target = OUTPUT_DIR / f"{name}.html"
    target.write_text(body, encoding="utf-8")
    return target


def _record_time(name: str, seconds: float) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[name] = round(seconds, 1)
    path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")


def test_notebooks_found() -> None:
    names = [path.stem for path in NOTEBOOKS]
    assert names == [
        "00-quickstart",
        "01-under-the-hood",
        "10-build-cache",
        "20-multistage",
        "30-rm-does-not-shrink",
        "40-squash",
    ]


def test_notebooks_committed_without_outputs() -> None:
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name} cell {index} has outputs"
                assert cell.execution_count is None, f"{path.name} cell {index}"


@pytest.mark.parametrize("path", _params())
def test_notebook_runs(
    path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel inherits the environment. Besides plotly's own mimetype,
    # which only a live notebook draws, the "notebook" renderer adds an HTML
    # form with plotly.js inlined, which the exported page can show.
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype+notebook")
    notebook, seconds = _execute(path, tmp_path)
    _record_time(path.stem, seconds)
    _export(notebook, path.stem)

    assert _problems(notebook) == []
