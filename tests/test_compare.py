"""Comparison of images and pull-time estimates, worked out by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from handmade import (
    Layer,
    directory,
    file,
    hardlink,
    symlink,
    whiteout,
    write_oci_archive,
)

import layerlab
from layerlab._compare import compare, comparison_html, counted_diff_sizes
from layerlab._compare_plots import change_treemap, sizes_figure, waterfalls_figure
from layerlab._format import human_bytes
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
    assert [trace.name for trace in bars.data][:2] == [
        "content",
        "layer blobs as stored",
    ]
    assert list(bars.data[0].y) == list(comparison.summary["content_bytes"])
    waterfalls = waterfalls_figure(comparison)
    # Four traces per image: the invisible base, visible bytes of shared
    # layers and of the image's own layers, and hidden bytes.
    assert len(waterfalls.data) == 8
    for image, first in zip(comparison.images, (0, 4), strict=True):
        traces = waterfalls.data[first : first + 4]
        stacked = [sum(values) for values in zip(*(trace.y for trace in traces))]
        assert stacked == list(image.layers["cumulative_size"])
    # The baseline's layers are all shared with itself; the later image adds
    # one layer of its own, so its legend entry comes from the second image.
    assert not any(waterfalls.data[2].y)
    assert waterfalls.data[6].y[-1] > 0
    legend = [trace.name for trace in waterfalls.data if trace.showlegend]
    assert sorted(legend) == sorted(
        ["visible, layer shared with the first", "visible, own layer"]
        + ["hidden by a later layer"]
        * (any(waterfalls.data[3].y) or any(waterfalls.data[7].y))
    )
    treemap = change_treemap(comparison, "after")
    assert "app" in list(treemap.data[0].ids)


def test_pull_seconds_by_hand() -> None:
    # Two layers of 100 and 300 bytes, 100 B/s in all, two connections of at
    # most 50 B/s each. Both run at 50 B/s until the first ends at 2 s. The
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


def _three(tmp_path: Path) -> list[Path]:
    """A baseline and two variants, worked out by hand below.

    - base: bin/tool (500), lib/a (100) and lib/b (100) hardlinked,
      doc/x (40), README (10) in the root.
    - grown: base, then lib/a rewritten (300, breaking the group), doc/x
      mode 0o600, bin/tool replaced by a directory with bin/tool/run (5).
    - moved: the base's second layer alone, on another first layer.
    """
    first = Layer(
        [
            directory("bin"),
            file("bin/tool", b"t" * 500),
            directory("lib"),
            file("lib/a", b"a" * 100),
            hardlink("lib/b", "lib/a"),
            file("README", b"r" * 10),
        ]
    )
    second = Layer([directory("doc"), file("doc/x", b"x" * 40)])
    grown = Layer(
        [
            directory("lib"),
            file("lib/a", b"A" * 300),
            directory("doc"),
            file("doc/x", b"x" * 40, mode=0o600),
            directory("bin"),
            whiteout("bin/tool"),
            directory("bin/tool"),
            file("bin/tool/run", b"r" * 5),
        ]
    )
    other = Layer([directory("opt"), file("opt/o", b"o")])
    return [
        write_oci_archive(tmp_path / "base.tar", [first, second]),
        write_oci_archive(tmp_path / "grown.tar", [first, second, grown]),
        write_oci_archive(tmp_path / "moved.tar", [other, second]),
    ]


def test_diff_flags_by_hand(tmp_path: Path) -> None:
    with compare(*map(str, _three(tmp_path))) as comparison:
        diff = comparison.diffs["grown"].set_index("path")
    changed = diff[diff["change"] != "unchanged"]
    assert dict(changed["change"].astype(str)) == {
        "lib/a": "modified",
        "doc/x": "metadata",
        "bin/tool": "modified",
        "bin/tool/run": "added",
    }
    # lib/b still shares the old content: unchanged, although it is now
    # stored as a file where the base stored a hardlink.
    assert diff.loc["lib/b", "change"] == "unchanged"
    assert diff.loc["lib/a", "size_change"] == 200
    assert bool(diff.loc["lib/a", "content_changed"])
    assert not diff.loc["lib/a", "kind_changed"]
    assert bool(diff.loc["bin/tool", "kind_changed"])
    assert diff.loc["bin/tool", "kind_before"] == "file"
    assert diff.loc["bin/tool", "kind_after"] == "dir"
    assert diff.loc["bin/tool", "size_change"] == -500
    assert bool(diff.loc["doc/x", "mode_changed"])
    assert not diff.loc["doc/x", "content_changed"]
    assert (diff.loc["doc/x", "mode_before"], diff.loc["doc/x", "mode_after"]) == (
        0o644,
        0o600,
    )
    assert pd.isna(diff.loc["bin/tool/run", "mode_before"])
    # Rows go by change (added, removed, modified, metadata, unchanged),
    # then largest change first.
    order = list(comparison.diffs["grown"]["path"])
    assert order[:4] == ["bin/tool/run", "bin/tool", "lib/a", "doc/x"]


def test_summary_counts_and_sizes(tmp_path: Path) -> None:
    with compare(*map(str, _three(tmp_path))) as comparison:
        summary = comparison.summary.set_index("label")
    assert list(summary.index) == ["base", "grown", "moved"]
    assert summary.loc["grown", "added"] == 1
    assert summary.loc["grown", "modified"] == 2
    assert summary.loc["grown", "metadata"] == 1
    assert summary.loc["grown", "removed"] == 0
    # moved has opt/o and doc/x; it lacks bin, lib and README.
    assert summary.loc["moved", "added"] == 2
    assert summary.loc["moved", "removed"] == 6
    assert summary.loc["base", "final_bytes"] == 500 + 100 + 10 + 40
    assert summary.loc["grown", "reclaimable_bytes"] == 500 + 40


def test_directory_sizes_count_hardlinks_once(tmp_path: Path) -> None:
    with compare(*map(str, _three(tmp_path))) as comparison:
        table = comparison.directories["grown"].set_index("directory")
        moved = comparison.directories["moved"].set_index("directory")
    # lib: a and b share 100 bytes in the base; after, a has 300 of its own
    # and b keeps the 100.
    assert table.loc["lib", "size_before"] == 100
    assert table.loc["lib", "size_after"] == 400
    assert table.loc["bin", "size_change"] == -495
    assert table.loc["bin/tool", "size_after"] == 5
    assert table.loc["bin/tool", "depth"] == 2
    assert table.loc["doc", "size_change"] == 0
    assert moved.loc["opt", "size_change"] == 1
    assert moved.loc["lib", "size_after"] == 0


def test_counted_diff_sizes_count_hardlinks_once(tmp_path: Path) -> None:
    with compare(*map(str, _three(tmp_path))) as comparison:
        diff = comparison.diffs["grown"]
        before, after = (image.filesystem for image in comparison.images[:2])
        counted_rows = counted_diff_sizes(diff, before, after)
    assert list(counted_rows.columns) == list(diff.columns)
    counted = counted_rows.set_index("path")
    # In the base, lib/b shares lib/a's 100 bytes, which count at lib/a. In
    # grown, lib/a has 300 bytes of its own and lib/b alone keeps the 100.
    assert counted.loc["lib/a", "size_before"] == 100
    assert counted.loc["lib/a", "size_after"] == 300
    assert counted.loc["lib/b", "size_before"] == 0
    assert counted.loc["lib/b", "size_after"] == 100
    assert counted.loc["lib/b", "size_change"] == 100
    # After: README, bin/tool/run, doc/x, lib/a and lib/b. Before: README,
    # bin/tool, doc/x and the lib group.
    assert counted["size_change"].sum() == (10 + 5 + 40 + 300 + 100) - (
        10 + 500 + 40 + 100
    )
    # The file list keeps each path's own size.
    by_path = diff.set_index("path")
    assert by_path.loc["lib/b", "size_before"] == 100


def test_pull_by_chain_and_unique(tmp_path: Path) -> None:
    with compare(*map(str, _three(tmp_path))) as comparison:
        pull = comparison.pull.set_index("label")
        sizes = {
            label: image.layers["compressed_size"].tolist()
            for label, image in zip(comparison.labels, comparison.images)
        }
        assert list(comparison.layers["images"]) == [2, 3, 1, 1]
    assert pull.loc["grown", "layers_to_pull_after_baseline"] == 1
    assert pull.loc["grown", "bytes_to_pull_after_baseline"] == sizes["grown"][2]
    assert pull.loc["grown", "unique_bytes"] == sizes["grown"][2]
    # moved's doc layer has the base's diff_id but another layer below it:
    # Docker Engine pulls both layers again.
    assert pull.loc["moved", "shared_with_baseline"] == 1
    assert pull.loc["moved", "layers_to_pull_after_baseline"] == 2
    assert pull.loc["moved", "bytes_to_pull_after_baseline"] == sum(sizes["moved"])
    assert pull.loc["moved", "unique_layers"] == 1
    assert pull.loc["base", "bytes_to_pull_after_baseline"] == sum(sizes["base"])


def test_change_treemap_nodes(tmp_path: Path) -> None:
    with compare(*map(str, _three(tmp_path))) as comparison:
        figure = change_treemap(comparison, "grown")
    trace = figure.data[0]
    nodes = dict(zip(trace.ids, zip(trace.parents, trace.values)))
    # The file bin/tool (-500) lies directly in bin, the new bin/tool/run
    # (+5) in the directory bin/tool; lib/a: +200.
    assert nodes == {
        "bin/tool": ("bin", 5),
        "bin": ("", 505),
        "lib": ("", 200),
    }
    colors = dict(zip(trace.ids, trace.marker.colors))
    assert colors["lib"] != colors["bin"]


def test_comparison_html_script_in_label(tmp_path: Path) -> None:
    paths = _three(tmp_path)[:2]
    labels = ["</script><script>alert(1)</script>", "<b>x</b>"]
    with compare(*map(str, paths), labels=labels) as comparison:
        text = comparison_html(comparison, charts=True)
    assert "<script>alert(1)" not in text
    assert "<b>x</b>" not in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text
    assert "Size change per directory" in text


def test_compare_closes_what_it_opened(tmp_path: Path) -> None:
    comparison = compare(*map(str, _three(tmp_path)[:2]))
    comparison.close()
    assert comparison._owned == []


def test_compare_rejects_bad_labels(tmp_path: Path) -> None:
    paths = list(map(str, _three(tmp_path)[:2]))
    with pytest.raises(layerlab.OptionError, match="labels"):
        compare(*paths, labels=["same", "same"])
    with pytest.raises(layerlab.OptionError, match="2 to 10"):
        compare(*(paths * 6))


def test_cli_compare_table_and_labels(tmp_path: Path) -> None:
    paths = _three(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerlab.cli",
            "compare",
            *map(str, paths),
            "--label",
            "one",
            "--label",
            "[bold]two[/bold]",
            "--label",
            "three",
            "--json",
            "--top",
            "2",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [row["label"] for row in document["summary"]] == [
        "one",
        "[bold]two[/bold]",
        "three",
    ]
    assert len(document["diffs"]["[bold]two[/bold]"]) == 2
    assert document["directories"]["[bold]two[/bold]"][0]["directory"] == "bin"

    printed = subprocess.run(
        [sys.executable, "-m", "layerlab.cli", "compare", *map(str, paths[:2])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    assert "grown against base" in printed.stdout
    assert "bin/tool/run" in printed.stdout


def test_net_change_counts_hardlinks_once(tmp_path: Path) -> None:
    base = Layer([directory("app"), file("app/a.txt", b"a" * 100)])
    before = write_oci_archive(tmp_path / "before.tar", [base])
    after = write_oci_archive(
        tmp_path / "after.tar",
        [
            base,
            Layer([file("app/b.bin", b"b" * 300), hardlink("app/c.bin", "app/b.bin")]),
        ],
    )
    with compare(f"oci-archive:{before}", f"oci-archive:{after}") as comparison:
        label = comparison.labels[1]
        # b.bin and its hardlink c.bin share 300 bytes, stored once.
        assert comparison.net_change(label) == 300
        diff = comparison.diffs[label]
        assert int(diff["size_change"].sum()) == 600
        assert "net 300 B" in comparison_html(comparison)
        with pytest.raises(layerlab.OptionError, match="no image labelled"):
            comparison.net_change(comparison.labels[0])


def test_comparison_labels_keep_quotes(tmp_path: Path) -> None:
    command = "/bin/sh -c echo \"q\" 'r' <b>"
    layers = [BASE, Layer([file("a.txt", b"a")], created_by=command)]
    first = write_oci_archive(tmp_path / "first.tar", layers)
    second = write_oci_archive(tmp_path / "second.tar", layers[:1])
    figure = waterfalls_figure(compare(str(first), str(second)))
    steps = {str(step) for trace in figure.data for step in trace.x}
    assert "1: RUN echo \"q\" 'r' &lt;b&gt;" in steps
    assert not any("&quot;" in step or "&#x27;" in step for step in steps)


def test_compare_without_directories(tmp_path: Path) -> None:
    first = write_oci_archive(tmp_path / "a.tar", [Layer([file("top", b"a" * 10)])])
    second = write_oci_archive(tmp_path / "b.tar", [Layer([file("top", b"b" * 25)])])
    comparison = compare(str(first), str(second))
    # Files in the root belong to no directory, so the table is empty.
    assert comparison.directories[comparison.labels[1]].empty
    assert comparison.net_change(comparison.labels[1]) == 15


def test_waterfall_hover_sizes_in_si_units(tmp_path: Path) -> None:
    before, after = _images(tmp_path)
    figure = waterfalls_figure(compare(str(before), str(after)))
    named = [trace for trace in figure.data if trace.name]
    assert named
    for trace in named:
        for text, value in zip(trace.hovertext, trace.y):
            assert text.endswith(f"{trace.name}: {human_bytes(int(value))}")
