"""Comparison of images and pull-time estimates, worked out by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from handmade import Layer, directory, file, symlink, write_oci_archive

import layerlab
from layerlab._compare import (
    change_treemap,
    compare,
    comparison_html,
    sizes_figure,
    waterfalls_figure,
)
from layerlab._pull import pull_cost, pull_seconds

BASE = Layer([directory("usr"), file("usr/lib.so", b"L" * 1000), file("etc", b"cfg")])


def _images(tmp_path: Path) -> tuple[Path, Path]:
    before = write_oci_archive(
        tmp_path / "before.tar",
        [
            BASE,
            Layer(
                [
                    directory("app"),
                    file("app/main.js", b"v1" * 50),
                    file("app/old.txt", b"o" * 30),
                    symlink("app/link", "main.js"),
                ]
            ),
        ],
    )
    after = write_oci_archive(
        tmp_path / "after.tar",
        [
            BASE,
            Layer(
                [
                    directory("app"),
                    file("app/main.js", b"v2" * 60),
                    file("app/new.txt", b"n" * 7),
                    symlink("app/link", "new.txt"),
                    file("etc", b"cfg", mode=0o600),
                ]
            ),
        ],
    )
    return before, after


def test_filesystem_diff_by_hand(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    comparison = compare(str(before), str(after))
    diff = comparison.diffs["after"].set_index("path")
    changed = diff[diff["change"] != "unchanged"]
    assert dict(changed["change"].astype(str)) == {
        "app/main.js": "modified",
        "app/link": "modified",
        "app/old.txt": "removed",
        "app/new.txt": "added",
        "etc": "metadata",
    }
    assert diff.loc["app/main.js", "size_change"] == 20
    assert diff.loc["app/old.txt", "size_change"] == -30
    assert diff.loc["app/new.txt", "size_change"] == 7
    assert diff.loc["usr/lib.so", "change"] == "unchanged"
    assert diff["size_change"].sum() == 20 - 30 + 7


def test_shared_layers_and_pull_bytes(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    comparison = compare(str(before), str(after))
    assert list(comparison.layers["images"]) == [2, 1, 1]
    pull = comparison.pull.set_index("label")
    after_image = comparison.images[1]
    assert pull.loc["after", "shared_with_baseline"] == 1
    assert pull.loc["after", "bytes_to_pull_after_baseline"] == int(
        after_image.layers.loc[1, "compressed_size"]
    )


def test_directory_sizes(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    table = compare(str(before), str(after)).directories["after"].set_index("directory")
    assert table.loc["app", "size_before"] == 100 + 30
    assert table.loc["app", "size_after"] == 120 + 7
    assert table.loc["app", "size_change"] == -3
    assert table.loc["usr", "size_change"] == 0


def test_compare_rejects_one_image(tmp_path: Path) -> None:
    before, _ = _images(tmp_path)
    with pytest.raises(layerlab.OptionError, match="2 to 10"):
        compare(str(before))


def test_comparison_html_escapes_names(tmp_path: Path) -> None:
    hostile = write_oci_archive(
        tmp_path / "x.tar", [BASE, Layer([file("<img src=x onerror=alert(1)>", b"1")])]
    )
    before, _ = _images(tmp_path)
    text = comparison_html(compare(str(before), str(hostile)), charts=True)
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_comparison_figures(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    comparison = compare(str(before), str(after))
    bars = sizes_figure(comparison)
    assert [trace.name for trace in bars.data][:2] == ["content", "compressed"]
    assert list(bars.data[0].y) == list(comparison.summary["content_bytes"])
    waterfalls = waterfalls_figure(comparison)
    # Three traces per image: the invisible base, visible and hidden bytes.
    assert len(waterfalls.data) == 6
    stacked = [
        sum(values)
        for values in zip(
            waterfalls.data[0].y, waterfalls.data[1].y, waterfalls.data[2].y
        )
    ]
    assert stacked == list(comparison.images[0].layers["cumulative_size"])
    treemap = change_treemap(comparison, "after")
    assert "app" in list(treemap.data[0].ids)


def test_pull_seconds_by_hand() -> None:
    # Two layers of 100 and 300 bytes, 100 B/s in all, two connections of at
    # most 50 B/s each: both run at 50 B/s until the first ends at 2 s; the
    # second then has 200 bytes left at 50 B/s, ending at 6 s.
    download, total = pull_seconds([(100, 0), (300, 0)], bandwidth=100, parallel=2)
    assert download == pytest.approx(6.0)
    assert total == pytest.approx(6.0)
    # One squashed layer of 400 bytes gets one connection only: 8 s.
    assert pull_seconds([(400, 0)], bandwidth=100, parallel=2)[0] == pytest.approx(8.0)
    # Extraction in order at 100 uncompressed B/s: layer 1 extracts from
    # 2 s to 4 s, layer 2 from 6 s to 9 s.
    _, total = pull_seconds(
        [(100, 200), (300, 300)], bandwidth=100, parallel=2, extract_rate=100
    )
    assert total == pytest.approx(9.0)


def test_pull_cost_with_cached_base(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    images = [layerlab.open_image(str(before)), layerlab.open_image(str(after))]
    costs = pull_cost(images, bandwidth=1000, cached=images[0], labels=["a", "b"])
    cached = costs[costs["state"] == "cached"].set_index("image")
    assert cached.loc["a", "layers"] == 0
    assert cached.loc["b", "layers"] == 1
    assert cached.loc["b", "bytes"] == int(images[1].layers.loc[1, "compressed_size"])


def test_cli_compare_json(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerlab.cli",
            "compare",
            str(before),
            str(after),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [row["label"] for row in document["summary"]] == ["before", "after"]
    assert {row["path"] for row in document["diffs"]["after"]} == {
        "app/main.js",
        "app/link",
        "app/old.txt",
        "app/new.txt",
        "etc",
    }


def test_report_with_several_images_has_comparison(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    text = layerlab.render_report([str(before), str(after)], inline_plotlyjs=False)
    assert text.count('class="comparison"') == 1
    assert "after against before" in text
