"""What the subcommands print: strings from images shown literally and visibly.

Names in these images carry rich markup (``[bold red]``), emoji codes
(``:one:``), terminal escape sequences and bidirectional controls. The
terminal output must show each of them as text, and ``--json`` must keep
the real strings.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from handmade import Layer, directory, file, whiteout, write_docker_archive
from rich.console import Console

from layerlab.cli import TABLE_NAMES, RichProgress, main

RED = "\x1b[31mRED\x1b[0m.txt"
TITLE = "\x1b]0;title\x07"
REVERSED = "rtl\u202etxt.exe"
MARKUP = "[bold red]FAKE[/bold red]"

BASE = Layer(
    [
        directory("tmp"),
        directory("tmp/build"),
        file("tmp/build/toolchain.bin", b"t" * 5000),
        file(RED, b"r" * 400),
        file(TITLE, b"o" * 300),
        file(REVERSED, b"e" * 200),
        file(MARKUP, b"m" * 100),
    ]
)
TOP = Layer(
    [
        whiteout("tmp/build/toolchain.bin"),
        file(RED, b"R" * 40),
        file(TITLE, b"O" * 30),
        file(REVERSED, b"E" * 20),
        file(MARKUP, b"M" * 10),
    ],
    created_by="/bin/sh -c echo \x1b[31mred [bold]x[/bold]",
)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--no-cache"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Print 200 columns wide, so that no name below wraps at a space."""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def names_image(tmp_path: Path) -> Path:
    """Two layers, where the second rewrites every name of the first and deletes one."""
    return write_docker_archive(tmp_path / "names.tar", [BASE, TOP])


@pytest.fixture
def one_layer(tmp_path: Path) -> Path:
    return write_docker_archive(tmp_path / "one.tar", [BASE])


# Markup in paths and commands.


def test_analyze_warning_with_markup_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each layer warns about the first of its entries that left the root.
    layers = [
        Layer([file("../[/]oops", b"1")]),
        Layer([file(f"../{MARKUP}", b"2")]),
    ]
    archive = write_docker_archive(tmp_path / "escape.tar", layers)
    code, out, _ = _run(capsys, "analyze", str(archive))
    assert code == 0
    assert "warning: layer 0:" in out
    assert "warning: layer 1:" in out
    assert "'../[/]oops'" in out
    assert f"'../{MARKUP}'" in out


def test_analyze_tables_show_markup_literally(
    names_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "analyze", str(names_image))
    assert code == 0
    assert f"/{MARKUP}" in out
    assert "[bold]x[/bold]" in out


def test_compare_titles_keep_emoji_codes(
    names_image: Path, one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = ["base:one:", "app:two:"]
    args = ["compare", str(one_layer), str(names_image)]
    code, out, _ = _run(capsys, *args, "--label", labels[0], "--label", labels[1])
    assert code == 0
    assert "app:two: against base:one:" in out
    assert "size change per directory: app:two:" in out
    assert f"/{MARKUP}" in out


def test_ci_shows_markup_path(
    names_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "ci", str(names_image))
    assert code == 1
    assert f"/{MARKUP}" in out


def test_squash_prints_output_path_literally(
    names_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / ":one: [bold]x.tar"
    code, out, _ = _run(capsys, "squash", str(names_image), "-o", str(output))
    assert code == 0
    assert f"wrote {output}" in out


def test_progress_description_with_markup() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, color_system=None, width=100)
    hook = RichProgress(console)
    hook.start(10, "reading ../[/]oops\x1b[31m")
    hook.advance(5)
    hook.finish()
    assert "reading ../[/]oops\\x1b[31m" in output.getvalue()


# Control and bidirectional characters.


def test_analyze_escapes_control_characters(
    names_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "analyze", str(names_image))
    assert code == 0
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\u202e" not in out
    assert "/\\x1b[31mRED\\x1b[0m.txt" in out
    assert "/\\x1b]0;title\\x07" in out
    assert "/rtl\\u202etxt.exe" in out
    assert "echo \\x1b[31mred" in out


def test_compare_escapes_control_characters(
    names_image: Path, one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "compare", str(one_layer), str(names_image))
    assert code == 0
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "/\\x1b[31mRED\\x1b[0m.txt" in out
    assert "/rtl\\u202etxt.exe" in out


def test_ci_escapes_control_characters(
    names_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "ci", str(names_image))
    assert code == 1
    assert "\x1b" not in out
    assert "/\\x1b]0;title\\x07" in out


def test_json_keeps_real_names(
    names_image: Path, one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "compare", str(one_layer), str(names_image), "--json")
    assert code == 0
    (paths,) = [
        [row["path"] for row in rows] for rows in json.loads(out)["diffs"].values()
    ]
    assert RED in paths
    assert REVERSED in paths

    code, out, _ = _run(capsys, "ci", str(names_image), "--json")
    assert code == 1
    paths = [row["path"] for row in json.loads(out)["inefficient_files"]]
    assert TITLE in paths


def test_error_escapes_tag_from_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = write_docker_archive(
        tmp_path / "tagged.tar", [BASE], tag="evil\x1b[2J/app:latest"
    )
    code, _, err = _run(capsys, "analyze", f"docker-archive:{archive}:other")
    assert code == 2
    assert "\x1b" not in err
    assert "evil\\x1b[2J/app:latest" in err


def test_log_escapes_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layers = [Layer([file("../up", b"1")])]
    archive = write_docker_archive(tmp_path / "a\x1b[31m.tar", layers)
    code, _, err = _run(capsys, "analyze", str(archive), "--json")
    assert code == 0
    assert "layerlab: WARNING: " in err
    assert "\x1b" not in err
    assert "a\\x1b[31m.tar" in err


# Undefined ratios, paths from the root, labels, plurals.


def test_analyze_one_layer_says_na(
    one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "analyze", str(one_layer))
    assert code == 0
    assert "user wasted         n/a" in out
    assert "nan" not in out


def test_ci_one_layer_says_na(
    one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "ci", str(one_layer))
    assert code == 0
    assert "user wasted         n/a" in out
    assert "highestUserWastedPercent: wasted bytes per user byte n/a" in out
    assert "nan" not in out


def test_paths_printed_from_root(
    names_image: Path, one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _run(capsys, "analyze", str(names_image))
    assert "│ /tmp/build/toolchain.bin" in out

    _, out, _ = _run(capsys, "compare", str(one_layer), str(names_image))
    assert "│ /tmp/build/toolchain.bin" in out
    assert "│ /tmp/build " in out


def _first_table_labels(out: str) -> list[str]:
    # The first column of each body line of the first rich table in ``out``.
    body = out.split("┡", 1)[1].split("└", 1)[0]
    return [line.split("│")[1].strip() for line in body.splitlines()[1:]]


def test_compare_labels_whole_at_80_columns(
    names_image: Path,
    one_layer: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    labels = [
        "newuser-test/imagewithlongname:one",
        "newuser-test/imagewithlongname:two",
    ]
    args = ["compare", str(one_layer), str(names_image)]
    code, out, _ = _run(capsys, *args, "--label", labels[0], "--label", labels[1])
    assert code == 0
    assert "…" not in out.split("└", 1)[0]
    assert "".join(_first_table_labels(out)) == "".join(labels)


def test_counts_take_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one_byte = Layer([directory("d"), file("d/a", b"1")])
    two_bytes = Layer([directory("d"), file("d/a", b"22")])
    before = write_docker_archive(tmp_path / "before.tar", [one_byte])
    after = write_docker_archive(tmp_path / "after.tar", [two_bytes])
    code, out, _ = _run(capsys, "compare", str(before), str(after))
    assert code == 0
    # A title wraps at the table's width, which the short paths keep narrow.
    assert "after against before: 1 path changed" in " ".join(out.split())

    deleted = write_docker_archive(
        tmp_path / "deleted.tar", [one_byte, Layer([whiteout("d/a")])]
    )
    rules = ["--highest-wasted-bytes", "10", "--lowest-efficiency", "disabled"]
    rules += ["--highest-user-wasted-percent", "disabled"]
    code, out, _ = _run(capsys, "ci", str(deleted), *rules)
    assert code == 0
    assert "wasted bytes        1 byte (1 B)" in out
    assert "highestWastedBytes: 1 byte wasted <= 10" in out

    code, out, _ = _run(
        capsys, "squash", str(before), "-o", str(tmp_path / "squashed.tar")
    )
    assert code == 0
    assert "squashed layers 0-0: 1 layer -> 1" in out


# Help text and options.


@pytest.mark.parametrize(
    "command", [["--help"], ["scenarios", "--help"], ["scenarios", "build", "--help"]]
)
def test_help_speaks_of_product(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(command)
    out = capsys.readouterr().out
    assert "talk" not in out


def test_help_names_classic_scenarios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "the four classic Dockerfile scenarios" in capsys.readouterr().out


def test_unknown_platform_is_option_error(
    one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "analyze", str(one_layer), "--platform", "bogus")
    assert code == 2
    assert "invalid platform 'bogus': unknown architecture 'bogus'" in err
    assert "os/architecture[/variant]" in err
    assert "linux/arm64/v8" in err


def test_plain_path_with_index_reads_file(
    one_layer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "analyze", f"{one_layer}:@5")
    assert code == 2
    assert "source index @5 is out of range" in err
    assert "engine" not in err.lower()

    code, out, _ = _run(capsys, "analyze", f"{one_layer}:@0", "--json")
    assert code == 0
    assert json.loads(out)["reference"] == f"{one_layer}:@0"


def test_tables_never_replace_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = tmp_path / "tables"
    tables.mkdir()
    archive = write_docker_archive(tables / "waste.csv", [Layer([file("a", b"a")])])
    before = archive.read_bytes()
    assert main(["analyze", f"docker-archive:{archive}", "--csv", str(tables)]) == 2
    assert "is the input image" in capsys.readouterr().err
    assert archive.read_bytes() == before
    assert sorted(path.name for path in tables.iterdir()) == ["waste.csv"]


def test_tables_interrupted_keep_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write_docker_archive(tmp_path / "image.tar", [Layer([file("a", b"a")])])
    tables = tmp_path / "tables"
    assert main(["analyze", str(archive), "--csv", str(tables)]) == 0
    previous = {path.name: path.read_bytes() for path in tables.iterdir()}
    assert sorted(previous) == [f"{name}.csv" for name in sorted(TABLE_NAMES)]

    written = []
    original = pd.DataFrame.to_csv

    def interrupt(table: pd.DataFrame, path: str, **options: object) -> None:
        # The first tables are written in full before the interrupt lands.
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path)
        original(table, path, **options)

    # An interrupt cannot be timed to land mid-write, so the writer raises it.
    monkeypatch.setattr("pandas.DataFrame.to_csv", interrupt)
    assert main(["analyze", str(archive), "--csv", str(tables)]) == 130
    assert {path.name: path.read_bytes() for path in tables.iterdir()} == previous
