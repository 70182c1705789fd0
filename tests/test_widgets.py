"""The notebook widgets on hand-made images, without a browser.

Expected rows come from how ``widget_images`` builds each layer, written
out by hand, and from pandas queries over the ``files`` table that do not
use the widgets' code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from handmade import Layer, directory, file, hardlink, write_oci_archive
from plotly.callbacks import InputDeviceState, Points
from report_images import HOSTILE_NAMES, hostile_layers, large_layers
from widget_images import write_after_image, write_small_image

import layerlab
from layerlab._compare import DIFF_CHANGES
from layerlab._summary import summary_html
from layerlab.widgets import CompareView, LayerExplorer
from layerlab.widgets._explorer import MORE_PREFIX
from layerlab.widgets._tree import parse_size, path_regex


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = write_small_image(tmp_path_factory.mktemp("small") / "small.tar")
    return layerlab.open_image(f"docker-archive:{path}", cache=False)


@pytest.fixture(scope="module")
def after(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = write_after_image(tmp_path_factory.mktemp("after") / "after.tar")
    return layerlab.open_image(f"docker-archive:{path}", cache=False)


def leaves(explorer: LayerExplorer) -> set[tuple[str, str, int]]:
    """Return (path, change, size) of every entry of the whole view."""
    view = explorer.view_table()
    return set(zip(view["path"], view["change"], view["size"].astype(int)))


def drawn(explorer: LayerExplorer) -> list[tuple[str, str, int]]:
    rows = explorer.tree_rows
    return list(zip(rows["path"], rows["change"], rows["size"].astype(int)))


def expand_all(explorer: LayerExplorer) -> None:
    for path in explorer.image.files["path"]:
        parent = str(path).rpartition("/")[0]
        if parent:
            explorer.expand(parent)


# Each layer's own changes, from how widget_images writes the layers.
LAYER_CHANGES = {
    0: {
        ("etc", "added", 0),
        ("usr", "added", 0),
        ("usr/bin", "added", 0),
        ("usr/lib", "added", 0),
        ("var", "added", 0),
        ("var/cache", "added", 0),
        ("etc/passwd", "added", 100),
        ("etc/hosts", "added", 50),
        ("usr/bin/tool", "added", 30_000),
        ("usr/lib/libbig.so", "added", 200_000),
        ("usr/lib/libsmall.so", "added", 5_000),
        ("var/cache/apt.bin", "added", 120_000),
    },
    1: {
        ("etc", "unchanged", 0),
        ("etc/passwd", "modified", 120),
        ("etc/hosts", "unchanged", 50),
        ("usr", "unchanged", 0),
        ("usr/bin", "unchanged", 0),
        ("usr/bin/tool", "modified", 30_000),
        ("usr/lib", "unchanged", 0),
        ("usr/lib/libnew.so", "added", 80_000),
        ("var/cache/tmp.dat", "added", 60_000),
    },
    2: {
        ("var/cache", "removed", 0),
        ("var/cache/apt.bin", "removed", 120_000),
        ("var/cache/tmp.dat", "removed", 60_000),
    },
    3: {
        ("app", "added", 0),
        ("app/main.py", "added", 3_000),
        ("app/data", "added", 0),
        ("app/data/big.bin", "added", 150_000),
        ("usr/lib/libsmall.so", "removed", 5_000),
    },
}

# The filesystem after layer 2, with the paths removed by then.
UP_TO_LAYER_2 = {
    ("etc", "unchanged", 0),
    ("etc/passwd", "modified", 120),
    ("etc/hosts", "unchanged", 50),
    ("usr", "unchanged", 0),
    ("usr/bin", "unchanged", 0),
    ("usr/bin/tool", "modified", 30_000),
    ("usr/lib", "unchanged", 0),
    ("usr/lib/libbig.so", "added", 200_000),
    ("usr/lib/libsmall.so", "added", 5_000),
    ("usr/lib/libnew.so", "added", 80_000),
    ("var", "added", 0),
    ("var/cache", "removed", 0),
    ("var/cache/apt.bin", "removed", 120_000),
    ("var/cache/tmp.dat", "removed", 60_000),
}


@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_layer_changes_match_construction(small: Any, layer: int) -> None:
    explorer = LayerExplorer(small, layer=layer, charts=False)
    assert leaves(explorer) == LAYER_CHANGES[layer]


def test_layer_changes_match_files_table(small: Any) -> None:
    files = small.files
    markers = files["kind"].isin(["whiteout", "opaque"])
    names = {"metadata": "modified"}
    for layer in range(len(small.layers)):
        own = files[(files["layer"] == layer) & ~markers]
        own = own.drop_duplicates("path", keep="last")
        hidden = files[(files["hidden_by"] == layer) & (files["layer"] < layer)]
        hidden = hidden[~hidden["kind"].isin(["whiteout", "opaque"])]
        removed = hidden[~hidden["path"].isin(own["path"])]
        expected = {
            (str(row.path), names.get(str(row.change), str(row.change)), row.size)
            for row in own.itertuples()
        } | {(str(row.path), "removed", row.size) for row in removed.itertuples()}
        explorer = LayerExplorer(small, layer=layer, charts=False)
        assert leaves(explorer) == expected


def test_aggregate_view_up_to_layer(small: Any) -> None:
    explorer = LayerExplorer(small, layer=2, mode="aggregate", charts=False)
    assert leaves(explorer) == UP_TO_LAYER_2


def test_aggregate_last_layer_is_filesystem(small: Any) -> None:
    explorer = LayerExplorer(small, mode="aggregate", charts=False)
    explorer.set_filters(changes=["added", "modified", "unchanged"])
    view = explorer.view_table()
    assert sorted(view["path"]) == sorted(small.filesystem["path"])


def test_tree_starts_collapsed(small: Any) -> None:
    explorer = LayerExplorer(small, layer=1, charts=False)
    # usr: tool 30 kB + libnew.so 80 kB; var: tmp.dat; etc: passwd + hosts.
    assert drawn(explorer) == [
        ("usr", "unchanged", 110_000),
        ("var", "", 60_000),
        ("etc", "unchanged", 170),
    ]
    assert explorer.tree_rows["expanded"].tolist() == [False, False, False]
    assert explorer.tree_rows["entries"].tolist() == [4, 1, 2]


def test_expand_lists_children(small: Any) -> None:
    explorer = LayerExplorer(small, layer=1, charts=False)
    explorer.expand("usr/lib")
    assert drawn(explorer) == [
        ("usr", "unchanged", 110_000),
        ("usr/lib", "unchanged", 80_000),
        ("usr/lib/libnew.so", "added", 80_000),
        ("usr/bin", "unchanged", 30_000),
        ("var", "", 60_000),
        ("etc", "unchanged", 170),
    ]
    assert explorer.tree_rows["depth"].tolist() == [0, 1, 2, 1, 0, 0]

    explorer.collapse("usr")
    assert [row[0] for row in drawn(explorer)] == ["usr", "var", "etc"]


def test_toggle_from_browser_message(small: Any) -> None:
    explorer = LayerExplorer(small, layer=3, charts=False)
    explorer.tree_table._receive(None, {"event": "toggle", "key": "app"}, [])
    assert [row[0] for row in drawn(explorer)] == [
        "app",
        "app/data",
        "app/main.py",
        "usr",
    ]
    toggles = [row[2] for row in explorer.tree_table.rows]
    assert toggles == [2, 1, 0, 1]


def test_expanded_tree_matches_view(small: Any) -> None:
    for layer in range(4):
        explorer = LayerExplorer(small, layer=layer, charts=False)
        expand_all(explorer)
        rows = explorer.tree_rows
        # A directory's line carries the bytes below it; its entry has none.
        sizes = rows["size"].where(rows["kind"] != "dir", 0).astype(int)
        shown = {
            (path, change, size)
            for path, change, size in zip(rows["path"], rows["change"], sizes)
            if change  # directories without an entry of their own
        }
        assert shown == LAYER_CHANGES[layer]


def test_change_filter_hides_unchanged(small: Any) -> None:
    explorer = LayerExplorer(small, layer=1, charts=False)
    explorer.change_buttons["unchanged"].value = False
    explorer.expand("etc")
    # The directories' own entries are unchanged, so they show without one.
    assert drawn(explorer) == [
        ("usr", "", 110_000),
        ("var", "", 60_000),
        ("etc", "", 120),
        ("etc/passwd", "modified", 120),
    ]
    assert {change for _path, change, _size in leaves(explorer)} == {
        "added",
        "modified",
    }


def test_change_filter_only_removed(small: Any) -> None:
    explorer = LayerExplorer(small, layer=2, mode="aggregate", charts=False)
    explorer.set_filters(changes=["removed"])
    assert leaves(explorer) == {
        ("var/cache", "removed", 0),
        ("var/cache/apt.bin", "removed", 120_000),
        ("var/cache/tmp.dat", "removed", 60_000),
    }
    assert drawn(explorer) == [("var", "", 180_000)]


def test_glob_filter(small: Any) -> None:
    explorer = LayerExplorer(small, mode="aggregate", charts=False)
    explorer.pattern_text.value = "*.so"
    assert leaves(explorer) == {
        ("usr/lib/libbig.so", "added", 200_000),
        ("usr/lib/libnew.so", "added", 80_000),
        ("usr/lib/libsmall.so", "removed", 5_000),
    }
    assert drawn(explorer) == [("usr", "", 285_000)]


def test_glob_with_slash_brings_directory(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0, charts=False)
    explorer.set_filters(pattern="/var/cache")
    assert leaves(explorer) == {
        ("var/cache", "added", 0),
        ("var/cache/apt.bin", "added", 120_000),
    }


def test_regex_filter(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0, charts=False)
    explorer.set_filters(pattern=r"^etc/(passwd|hosts)$", regex=True)
    assert leaves(explorer) == {
        ("etc/passwd", "added", 100),
        ("etc/hosts", "added", 50),
    }


def test_invalid_regex_keeps_view(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0, charts=False)
    before = leaves(explorer)
    explorer.set_filters(pattern="([", regex=True)
    assert leaves(explorer) == before
    assert "invalid regular expression" in explorer.status.value


def test_min_size_filter(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0, charts=False)
    explorer.min_size_text.value = "100k"
    assert leaves(explorer) == {
        ("usr/lib/libbig.so", "added", 200_000),
        ("var/cache/apt.bin", "added", 120_000),
    }


def test_sort_by_name(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0, charts=False)
    assert [row[0] for row in drawn(explorer)] == ["usr", "var", "etc"]
    explorer.set_filters(sort="name")
    assert [row[0] for row in drawn(explorer)] == ["etc", "usr", "var"]


def test_more_line_caps_children(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0, max_children=2, charts=False)
    rows = explorer.tree_rows
    assert rows["path"].tolist() == ["usr", "var", ""]
    assert rows["kind"].tolist() == ["dir", "dir", "more"]
    assert rows["entries"].iloc[2] == 1  # etc
    assert rows["size"].iloc[2] == 150

    explorer.tree_table.send_event("more", MORE_PREFIX)
    assert explorer.tree_rows["path"].tolist() == ["usr", "var", "etc"]


def test_max_rows_caps_lines(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0, max_rows=4, charts=False)
    expand_all(explorer)
    assert len(explorer.tree_rows) == 4
    assert "showing the first 4 lines" in explorer.status.value


def test_select_layer_from_table(small: Any) -> None:
    explorer = LayerExplorer(small, charts=False)
    explorer.layer_table.selected = "2"
    assert explorer.layer == 2
    assert leaves(explorer) == LAYER_CHANGES[2]


def test_select_layer_out_of_range(small: Any) -> None:
    explorer = LayerExplorer(small, charts=False)
    with pytest.raises(layerlab.OptionError, match="layer 4 is out of range"):
        explorer.select_layer(4)


def test_path_history_of_file(small: Any) -> None:
    explorer = LayerExplorer(small, charts=False)
    explorer.select_path("/usr/lib/libsmall.so")
    history = explorer.history
    assert list(zip(history["layer"], history["what"], history["size"])) == [
        (0, "added", 5_000),
        (3, "deleted", 0),
    ]
    assert history["hidden_by"].tolist() == [3, -1]
    assert len(explorer.history_table.rows) == 2


def test_path_history_of_directory(small: Any) -> None:
    explorer = LayerExplorer(small, charts=False)
    explorer.tree_table.selected = "var/cache"
    history = explorer.history
    assert list(
        zip(history["layer"], history["what"], history["size"], history["entries"])
    ) == [
        (0, "added", 0, 0),
        (0, "wrote below", 120_000, 1),
        (1, "wrote below", 60_000, 1),
        (2, "deleted", 0, 0),
        (2, "hid below", 180_000, 2),
    ]


def test_waterfall_click_selects_layer(small: Any) -> None:
    explorer = LayerExplorer(small)
    bars = explorer.charts.data[0]
    points = Points(point_inds=[1], xs=[0], ys=[1], trace_name="", trace_index=0)
    bars._dispatch_on_click(points, InputDeviceState())
    assert explorer.layer == 1
    assert explorer.layer_table.selected == "1"
    shape = explorer.charts.layout.shapes[0]
    assert (shape.y0, shape.y1) == (0.5, 1.5)


def test_treemap_follows_view(small: Any) -> None:
    explorer = LayerExplorer(small, layer=2)
    treemap = explorer.charts.data[explorer._treemap_trace]
    values = dict(zip(treemap.ids, treemap.values))
    assert values["/"] == 180_000
    assert values["/var/cache/apt.bin"] == 120_000

    explorer.pattern_text.value = "tmp.dat"
    treemap = explorer.charts.data[explorer._treemap_trace]
    assert dict(zip(treemap.ids, treemap.values))["/"] == 60_000
    assert "/var/cache/apt.bin" not in treemap.ids


def test_treemap_click_selects_path(small: Any) -> None:
    explorer = LayerExplorer(small, layer=0)
    treemap = explorer.charts.data[explorer._treemap_trace]
    position = list(treemap.ids).index("/usr/lib/libbig.so")
    points = Points(point_inds=[position], xs=[], ys=[], trace_name="", trace_index=0)
    treemap._dispatch_on_click(points, InputDeviceState())
    assert explorer.tree_table.selected == "usr/lib/libbig.so"
    assert "usr/lib/libbig.so" in explorer.tree_rows["path"].tolist()
    assert explorer.history["what"].tolist() == ["added"]


def test_tables_are_plain_dataframes(small: Any, after: Any) -> None:
    explorer = LayerExplorer(small, charts=False)
    explorer.select_path("etc/passwd")
    compare = CompareView([small, after], charts=False)
    for table in (
        explorer.tree_rows,
        explorer.view_table(),
        explorer.history,
        compare.diff(),
        compare.rows,
    ):
        assert type(table) is pd.DataFrame


def test_compare_diff(small: Any, after: Any) -> None:
    compare = CompareView([small, after])
    diff = compare.diff().set_index("path")
    assert diff.loc["app/extra.txt", "change"] == "added"
    assert diff.loc["app/extra.txt", "size_after"] == 700
    assert diff.loc["app/main.py", "change"] == "modified"
    assert diff.loc["app/main.py", "size_change"] == 1_500
    assert (diff["change"] == "unchanged").sum() == len(small.filesystem) - 1
    assert compare.rows["path"].tolist() == ["app/main.py", "app/extra.txt"]
    assert (
        "1 added, 0 removed, 1 modified, 0 metadata, 13 unchanged"
        in compare.status.value
    )
    assert "3 layers shared" in compare.status.value

    deltas = compare.charts.data[compare._delta_trace]
    assert list(deltas.y) == ["/app"]
    assert list(deltas.x) == [2_200]


def test_compare_filters(small: Any, after: Any) -> None:
    compare = CompareView([small, after], charts=False)
    compare.set_filters(changes=["unchanged"], directory="etc")
    assert sorted(compare.rows["path"]) == ["etc", "etc/hosts", "etc/passwd"]
    compare.set_filters(changes=["added"], directory="")
    assert compare.rows["path"].tolist() == ["app/extra.txt"]


def test_compare_directory_chart(small: Any, after: Any) -> None:
    compare = CompareView([small, after])
    deltas = compare.charts.data[compare._delta_trace]
    compare.set_filters(changes=["added", "modified"], directory="app")
    # Both changed files lie directly in /app, so they add up there.
    assert list(deltas.y) == ["/app"]
    assert list(deltas.x) == [2_200]
    assert not compare.charts.layout.annotations

    compare.set_filters(changes=["unchanged"], directory="etc")
    assert list(deltas.y) == []
    assert compare.charts.layout.annotations[0].text.startswith("no change")


def test_compare_chart_counts_hardlinks_once(tmp_path: Path) -> None:
    base = Layer(
        [
            directory("lib"),
            file("lib/a", b"a" * 100),
            hardlink("lib/b", "lib/a"),
            file("etc", b"e" * 10),
        ]
    )
    rewrite = Layer([directory("lib"), file("lib/a", b"A" * 300)])
    before = write_oci_archive(tmp_path / "before.tar", [base])
    after = write_oci_archive(tmp_path / "after.tar", [base, rewrite])
    compare = CompareView([str(before), str(after)])
    # lib contains 100 bytes before (a and b share them) and 400 after (a's
    # own 300, and the old 100 that only b keeps).
    assert "final size change +300 B" in compare.status.value
    directories = compare.comparison.directories["after"].set_index("directory")
    assert directories.loc["lib", "size_change"] == 300

    # The chart sums the paths shown. By default that is lib/a alone, since
    # lib/b is unchanged, and with every change kind shown it is all 300.
    deltas = compare.charts.data[compare._delta_trace]
    assert list(deltas.y) == ["/lib"]
    assert list(deltas.x) == [200]
    compare.set_filters(changes=DIFF_CHANGES)
    assert list(deltas.x) == [300]
    compare.comparison.close()


def test_compare_reverse_pair(small: Any, after: Any) -> None:
    compare = CompareView([small, after], charts=False)
    compare.before_dropdown.value = 1
    compare.after_dropdown.value = 0
    assert compare.rows.set_index("path")["change"].to_dict() == {
        "app/main.py": "modified",
        "app/extra.txt": "removed",
    }


def test_compare_needs_two_images(small: Any) -> None:
    with pytest.raises(layerlab.OptionError, match="at least two images"):
        CompareView([small])


def test_summary_html(small: Any) -> None:
    page = summary_html(small)
    assert small.reference in page
    assert "<th>layers</th><td class='num'>4</td>" in page
    # Hidden bytes by construction: layer 0 keeps 155,150 bytes that later
    # layers replace or delete, layer 1 keeps tmp.dat's 60,000.
    assert "215.2 kB (31.7%)" in page
    assert f"{small.metrics.efficiency:.2%}" in page
    assert "<script" not in page
    assert small._repr_html_() == page


def test_static_views_escape_names(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "hostile.tar", hostile_layers())
    image = layerlab.open_image(f"oci-archive:{archive}", cache=False)
    explorer = LayerExplorer(image, layer=0, charts=False)
    explorer.expand("data")
    page = explorer.static_html()
    for name in HOSTILE_NAMES:
        if "<" in name:
            assert name not in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in page
    assert "<script>alert" not in summary_html(image)


def test_mimebundle_has_static_fallback(small: Any, after: Any) -> None:
    explorer = LayerExplorer(small, charts=False)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "layer 3, changes: 5 entries" in bundle["text/html"]
    compare = CompareView([small, after], charts=False)
    assert "app/extra.txt" in compare._repr_mimebundle_()["text/html"]


def test_parse_size() -> None:
    assert parse_size("") == 0
    assert parse_size("2048") == 2048
    assert parse_size("10k") == 10_000
    assert parse_size("1.5 MB") == 1_500_000
    assert parse_size("4MiB") == 4 * 1024 * 1024
    with pytest.raises(layerlab.OptionError, match="invalid size"):
        parse_size("ten")


def test_path_regex_globs() -> None:
    cases = {
        ("*.so", "usr/lib/libz.so"): True,
        ("*.so", "usr/lib/libz.so.1"): False,
        ("lib", "usr/lib/libz.so"): True,  # no wildcard: substring
        ("usr/*/libz.so", "usr/lib/libz.so"): True,
        ("usr/*/libz.so", "opt/usr/lib/libz.so"): False,
        ("usr/**", "usr/lib/x/y"): True,
        ("usr/lib", "usr/lib/x"): True,
        ("lib?", "usr/lib64/x"): False,
        ("lib??", "usr/lib64/x"): True,
        ("[!a]pp", "opt/bpp"): True,
        ("[!a]pp", "opt/app"): False,
    }
    for (pattern, path), expected in cases.items():
        compiled = path_regex(pattern)
        assert compiled is not None
        assert bool(compiled.search(path)) is expected, (pattern, path)


def test_update_payload_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 20,000 files keep the test quick; the tree and the treemap are capped,
    # so what is sent does not grow with the image.
    archive = write_oci_archive(tmp_path / "large.tar", large_layers(20_000))
    image = layerlab.open_image(f"oci-archive:{archive}", cache=False)
    import ipywidgets

    sent: list[int] = []
    original = ipywidgets.Widget._send

    def record(self: Any, msg: Any, buffers: Any = None) -> None:
        sent.append(len(json.dumps(msg, default=str)))
        original(self, msg, buffers)

    monkeypatch.setattr(ipywidgets.Widget, "_send", record)
    explorer = LayerExplorer(image, layer=1)
    state = sum(
        len(json.dumps(value, default=str))
        for widget in _all_widgets(explorer)
        for name, value in widget.get_state().items()
        if name != "_esm"
    )
    assert state < 300_000

    for action in (
        lambda: explorer.select_layer(0),
        lambda: explorer.expand("usr/share"),
        lambda: explorer.set_filters(pattern="pkg01*"),
        lambda: explorer.select_path("usr/share/pkg010"),
    ):
        sent.clear()
        action()
        assert sum(sent) < 250_000
    assert len(explorer.tree_rows) <= explorer.max_rows


def _all_widgets(root: Any) -> list[Any]:
    found = [root]
    for child in getattr(root, "children", ()):
        found += _all_widgets(child)
    return found
