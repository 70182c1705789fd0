"""The command line's log output and progress bars, run as a user runs them.

Expected digests and sizes come from the layer tars the test writes: an
uncompressed layer's blob is its tar, so its size and diff_id are the
tar's length and SHA-256.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from handmade import (
    Layer,
    directory,
    file,
    layer_tar,
    sha256,
    write_docker_archive,
    write_oci_layout,
)
from rich.console import Console

from layerlab._cli_scenarios import _StepProgress
from layerlab.cli import RichProgress, main

BASE = Layer([directory("etc"), file("etc/base", b"b" * 1000)])
APP = Layer([file("app", b"a" * 300)])
OTHER_APP = Layer([file("app", b"c" * 700)])

SECONDS = r"\d+\.\d\d s"


def _layerlab(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LAYERLAB_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "layerlab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()


def _diff_id(layer: Layer) -> str:
    return sha256(layer_tar(layer.entries))


def _size(layer: Layer) -> int:
    return len(layer_tar(layer.entries))


@pytest.fixture
def restore_logger() -> Iterator[None]:
    """Undo what main() sets on the package logger, for the tests after."""
    logger = logging.getLogger("layerlab")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_silent_without_verbose(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "app.tar", [BASE, APP])
    result = _layerlab("analyze", str(archive), "--json", cache=tmp_path / "cache")
    assert _lines(result) == []


def test_verbose_names_source_cache_and_time(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "app.tar", [BASE, APP])
    cache = tmp_path / "cache"
    ref = f"docker-archive:{archive}"
    opened = re.escape(
        f"layerlab: INFO: opened docker-archive file {archive}, "
        "platform linux/amd64: 2 layers in "
    )

    first = _lines(_layerlab("-v", "analyze", ref, "--json", cache=cache))
    assert len(first) == 2
    assert first[0] == (
        f"layerlab: INFO: {ref}: 0 of 2 layers from the layer cache, 2 parsed"
    )
    assert re.fullmatch(opened + SECONDS, first[1])

    again = _lines(_layerlab("-v", "analyze", ref, "--json", cache=cache))
    assert len(again) == 2
    assert again[0] == (
        f"layerlab: INFO: {ref}: read from the image cache, no layer parsed"
    )
    assert re.fullmatch(opened + SECONDS, again[1])


def test_verbose_counts_shared_layers(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = write_docker_archive(tmp_path / "first.tar", [BASE, APP])
    second = write_docker_archive(tmp_path / "second.tar", [BASE, OTHER_APP])
    _lines(_layerlab("analyze", str(first), "--json", cache=cache))
    lines = _lines(_layerlab("-v", "analyze", str(second), "--json", cache=cache))
    assert lines[0] == (
        f"layerlab: INFO: {second}: 1 of 2 layers from the layer cache, 1 parsed"
    )


def test_verbose_names_oci_directory_and_image(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", [BASE, APP])
    ref = f"oci:{layout}"
    lines = _lines(_layerlab("-v", "analyze", ref, "--json", cache=tmp_path / "c"))
    assert re.fullmatch(
        re.escape(f"layerlab: INFO: opened oci directory {layout}, platform ")
        + r"linux/amd64: 2 layers in "
        + SECONDS,
        lines[-1],
    )


def test_debug_logs_each_layer(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = write_docker_archive(tmp_path / "first.tar", [BASE, APP])
    second = write_docker_archive(tmp_path / "second.tar", [BASE, OTHER_APP])

    lines = _lines(_layerlab("-vv", "analyze", str(first), "--json", cache=cache))
    debug = [line for line in lines if line.startswith("layerlab: DEBUG: ")]
    assert len(debug) == 2
    for index, (line, layer) in enumerate(zip(debug, (BASE, APP))):
        size = _size(layer)
        expected = re.escape(
            f"layerlab: DEBUG: layer {index} ({_diff_id(layer)[:19]}): "
            f"parsed {size} bytes ({size} uncompressed) in "
        )
        assert re.fullmatch(expected + SECONDS, line)

    lines = _lines(_layerlab("-vv", "analyze", str(second), "--json", cache=cache))
    cached = f"layerlab: DEBUG: layer 0 ({_diff_id(BASE)[:19]}): from the layer cache"
    assert cached in lines
    assert sum(line.startswith("layerlab: DEBUG: layer 1 (") for line in lines) == 1


def test_logging_reaches_current_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logger: None
) -> None:
    archive = write_docker_archive(tmp_path / "app.tar", [BASE, APP])
    root_level = logging.getLogger().level
    assert main(["-vv", "analyze", str(archive), "--json", "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert f"layerlab: INFO: {archive}: 0 of 2 layers from the layer cache" in err
    assert "layerlab: DEBUG: layer 1 (" in err
    # Only the package logger is turned up, not the root or other libraries.
    assert logging.getLogger().level == root_level
    assert not logging.getLogger("urllib3").isEnabledFor(logging.DEBUG)

    # A second run in the same process replaces the handler and level.
    assert main(["analyze", str(archive), "--json", "--no-cache"]) == 0
    assert capsys.readouterr().err == ""


def test_debug_logs_parallel_reads(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    restore_logger: None,
) -> None:
    # Worker processes time their own layer, and the parent logs the line.
    if (os.cpu_count() or 1) < 2:
        pytest.skip("layers are read in parallel only with two or more CPUs")
    monkeypatch.setattr("layerlab._image.PARALLEL_MIN_BYTES", 0)
    layers = [BASE, APP, OTHER_APP]
    archive = write_docker_archive(tmp_path / "three.tar", layers)
    assert main(["-vv", "analyze", str(archive), "--json", "--no-cache"]) == 0
    # The parent collects parallel reads largest first, not in layer order.
    debug = sorted(
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("layerlab: DEBUG: ")
    )
    assert len(debug) == 3
    for index, (line, layer) in enumerate(zip(debug, layers)):
        size = _size(layer)
        expected = re.escape(
            f"layerlab: DEBUG: layer {index} ({_diff_id(layer)[:19]}): "
            f"parsed {size} bytes ({size} uncompressed) in "
        )
        assert re.fullmatch(expected + SECONDS, line)


@pytest.mark.parametrize(
    ("hook_class", "total", "done", "shown"),
    [
        (RichProgress, 2_000_000, 1_000_000, "1.0/2.0 MB"),
        (_StepProgress, 4, 3, "3/4 steps"),
    ],
)
def test_progress_bar_on_terminal(
    hook_class: type[RichProgress], total: int, done: int, shown: str
) -> None:
    output = io.StringIO()
    # No colours, so the text can be searched without escape codes.
    console = Console(file=output, force_terminal=True, color_system=None, width=100)
    hook = hook_class(console)
    hook.start(total, "reading app")
    hook.advance(done)
    hook.finish()
    assert "reading app" in output.getvalue()
    assert shown in output.getvalue()


def test_progress_bars_off_without_terminal() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=False)
    for hook in (RichProgress(console), _StepProgress(console)):
        hook.start(10, "reading")
        hook.advance(5)
        hook.finish()
    assert output.getvalue() == ""
