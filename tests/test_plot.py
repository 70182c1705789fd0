"""Figures of layerlab.plot on hand-made images whose numbers are known.

The small image below is worked out by hand:

- layer 0 (after an ENV entry with no layer): app/a.bin 1000 B,
  app/b.bin 3000 B, app/c.bin a hardlink to b.bin, etc/conf 10 B;
- layer 1: app/a.bin again with 500 B, app/new.bin 2000 B, a whiteout of
  etc/conf.

So the final filesystem contains 500 + 3000 + 2000 = 5500 B (the hardlink
shares b.bin's bytes), app/ has 3000 B from layer 0 and 2500 B from
layer 1, and 1000 B (overwritten) + 10 B (deleted) are waste.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd
import plotly.graph_objects as go
import pytest
from handmade import (
    Layer,
    directory,
    file,
    hardlink,
    layer_tar,
    whiteout,
    write_oci_archive,
)
from report_images import LARGE_FILES, hostile_layers, large_layers

import layerlab
from layerlab import plot
from layerlab._treemap import AGGREGATE_SUFFIX, directory_tree

FINAL_BYTES = 5500
LAYER_CONTENT = (4010, 2500)
HIDDEN = (1010, 0)


def small_layers() -> list[Layer]:
    return [
        Layer(
            [
                directory("app"),
                file("app/a.bin", b"a" * 1000),
                file("app/b.bin", b"b" * 3000),
                hardlink("app/c.bin", "app/b.bin"),
                directory("etc"),
                file("etc/conf", b"c" * 10),
            ],
            created_by="COPY app /app # buildkit",
        ),
        Layer(
            [
                file("app/a.bin", b"A" * 500),
                file("app/new.bin", b"n" * 2000),
                whiteout("etc/conf"),
            ],
            created_by="/bin/sh -c echo a > /app/a.bin && rm /etc/conf",
        ),
    ]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> layerlab.Image:
    path = tmp_path_factory.mktemp("small") / "small.tar"
    write_oci_archive(path, small_layers(), empty_history=1)
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        yield image


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> layerlab.Image:
    path = tmp_path_factory.mktemp("large") / "large.tar"
    write_oci_archive(path, large_layers())
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        yield image


def node(figure: go.Figure, node_id: str) -> dict:
    trace = figure.data[0]
    index = list(trace.ids).index(node_id)
    return {
        "value": trace.values[index],
        "label": trace.labels[index],
        "parent": trace.parents[index],
        "hover": trace.hovertext[index],
        "color": trace.marker.colors[index],
    }


def test_treemap_root_is_final_bytes(small: layerlab.Image) -> None:
    figure = plot.treemap(small)
    assert isinstance(figure.data[0], go.Treemap)
    assert node(figure, "/")["value"] == FINAL_BYTES
    assert small.metrics.final_bytes == FINAL_BYTES


def test_treemap_counts_hardlink_once(small: layerlab.Image) -> None:
    figure = plot.treemap(small)
    assert node(figure, "/app")["value"] == FINAL_BYTES
    assert "/app/c.bin" not in figure.data[0].ids
    assert node(figure, "/app/b.bin")["value"] == 3000


def test_treemap_colours_by_largest_layer(small: layerlab.Image) -> None:
    figure = plot.treemap(small)
    app = node(figure, "/app")
    assert app["color"] == plot.layer_color(0)
    assert "bytes from 2 layers" in app["hover"]
    assert "55%" in app["hover"]
    assert node(figure, "/app/new.bin")["color"] == plot.layer_color(1)
    assert "layer 1: RUN echo a" in node(figure, "/app/a.bin")["hover"]


def test_treemap_leaves_out_empty_directories(small: layerlab.Image) -> None:
    figure = plot.treemap(small)
    assert "/etc" not in figure.data[0].ids


def test_treemap_legend_names_layers(small: layerlab.Image) -> None:
    figure = plot.treemap(small)
    names = [trace.name for trace in figure.data[1:]]
    assert names == [
        "0: COPY app /app",
        "1: RUN echo a &gt; /app/a.bin &amp;&amp; rm /etc/conf",
    ]


def test_sunburst_option(small: layerlab.Image) -> None:
    figure = plot.treemap(small, sunburst=True)
    assert isinstance(figure.data[0], go.Sunburst)
    assert node(figure, "/")["value"] == FINAL_BYTES


def test_treemap_accepts_filesystem_table(small: layerlab.Image) -> None:
    figure = plot.treemap(small.filesystem)
    assert node(figure, "/")["value"] == FINAL_BYTES


def expected_large_final() -> tuple[int, int]:
    """Return the large image's final bytes and path count, from its layers."""
    sizes: dict[str, int] = {}
    for layer in large_layers():
        for entry in layer.entries:
            if entry.kind == "file" and "/.wh." not in entry.name:
                sizes[entry.name] = len(entry.content)
    kept = {
        path: size
        for path, size in sizes.items()
        if not path.startswith("usr/share/pkg007/")
    }
    return sum(kept.values()), len(kept)


@pytest.mark.parametrize("max_nodes", [50, 2000])
def test_treemap_bounds_large_image(large: layerlab.Image, max_nodes: int) -> None:
    final_bytes, file_count = expected_large_final()
    assert file_count == LARGE_FILES - LARGE_FILES // 500
    figure = plot.treemap(large, max_nodes=max_nodes)
    trace = figure.data[0]
    assert len(trace.ids) <= max_nodes
    assert len(trace.ids) >= max_nodes // 2
    assert trace.values[0] == final_bytes


def test_treemap_values_add_up(large: layerlab.Image) -> None:
    trace = plot.treemap(large, max_nodes=500).data[0]
    values = dict(zip(trace.ids, trace.values))
    children: dict[str, int] = {}
    for node_id, parent, value in zip(trace.ids, trace.parents, trace.values):
        if parent:
            children[parent] = children.get(parent, 0) + value
    for parent, total in children.items():
        assert values[parent] == total, parent


def test_treemap_folds_smaller_files(large: layerlab.Image) -> None:
    trace = plot.treemap(large, max_nodes=100).data[0]
    folded = [
        (node_id, label)
        for node_id, label in zip(trace.ids, trace.labels)
        if node_id.endswith(AGGREGATE_SUFFIX)
    ]
    assert folded
    for node_id, label in folded:
        assert label.startswith("(")
        assert label.endswith(" smaller files)")


def test_directory_tree_counts_files(large: layerlab.Image) -> None:
    _, file_count = expected_large_final()
    nodes = directory_tree(large.filesystem, max_nodes=300)
    root = nodes.iloc[0]
    assert root["id"] == "/"
    assert root["files"] == file_count
    assert len(nodes) <= 300


def test_directory_tree_rejects_tiny_budget(small: layerlab.Image) -> None:
    with pytest.raises(layerlab.OptionError):
        directory_tree(small.filesystem, max_nodes=1)


def test_waterfall_final_cumulative(small: layerlab.Image) -> None:
    figure = plot.waterfall(small)
    cumulative = next(t for t in figure.data if t.name == "cumulative size")
    assert cumulative.x[-1] == sum(LAYER_CONTENT)
    assert cumulative.x[-1] == small.layers["content_size"].sum()


def test_waterfall_bars_per_layer(small: layerlab.Image) -> None:
    figure = plot.waterfall(small)
    kept, hidden = figure.data[0], figure.data[1]
    assert list(hidden.x) == list(HIDDEN)
    assert [k + h for k, h in zip(kept.x, hidden.x)] == list(LAYER_CONTENT)
    assert list(kept.base) == [0, LAYER_CONTENT[0]]


def test_waterfall_marks_empty_layers(small: layerlab.Image) -> None:
    figure = plot.waterfall(small)
    empty = next(t for t in figure.data if t.name == "instruction without a layer")
    assert len(empty.y) == 1
    assert list(empty.x) == [0]
    labels = figure.layout.yaxis.ticktext
    assert len(labels) == 3
    assert labels[0] == "–  ENV HANDMADE=1"
    assert labels[1] == "0  COPY app /app"
    assert labels[2].startswith("1  RUN echo a &gt; /app/a.bin")


def test_waterfall_hover_has_full_command(small: layerlab.Image) -> None:
    figure = plot.waterfall(small)
    hover = figure.data[0].hovertext[1]
    assert "/bin/sh -c echo a &gt; /app/a.bin &amp;&amp; rm /etc/conf" in hover


def test_waterfall_without_history(small: layerlab.Image) -> None:
    figure = plot.waterfall(small.layers)
    assert len(figure.layout.yaxis.ticktext) == 2
    assert figure.data[2].x[-1] == sum(LAYER_CONTENT)


def test_waste_split_by_reason(small: layerlab.Image) -> None:
    figure = plot.waste(small)
    by_reason = {trace.name: list(trace.x) for trace in figure.data}
    assert by_reason == {"deleted": [10], "overwritten": [1000]}
    assert list(figure.layout.yaxis.ticktext) == ["/app/a.bin", "/etc/conf"]


def test_waste_top_limits_paths(small: layerlab.Image) -> None:
    figure = plot.waste(small, top=1)
    assert [trace.name for trace in figure.data] == ["overwritten"]
    with pytest.raises(layerlab.OptionError):
        plot.waste(small, top=0)


def test_waste_large_image_totals(large: layerlab.Image) -> None:
    figure = plot.waste(large, top=20)
    drawn = sum(sum(trace.x) for trace in figure.data)
    expected = large.waste.groupby("path")["size"].sum().nlargest(20).sum()
    assert drawn == expected
    assert len(figure.layout.yaxis.ticktext) == 20


def test_layer_sizes_match_blobs(small: layerlab.Image) -> None:
    figure = plot.layer_sizes(small)
    series = {trace.name: list(trace.x) for trace in figure.data}
    tars = [len(layer_tar(layer.entries)) for layer in small_layers()]
    assert series["content"] == list(LAYER_CONTENT)
    assert series["uncompressed tar"] == tars
    # The hand-made archive stores its layers as plain tar.
    assert series["blob as stored (uncompressed)"] == tars


def test_labels_are_escaped(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "hostile.tar", hostile_layers())
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        figures = [
            plot.treemap(image),
            plot.waterfall(image),
            plot.waste(image),
            plot.layer_sizes(image),
        ]
        labels = list(figures[0].data[0].labels)
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in labels
    for figure in figures:
        for trace in figure.data:
            texts = as_list(trace.hovertext) + as_list(getattr(trace, "labels", None))
            for text in texts:
                assert "<" not in without_markup(text), text
        for text in as_list(figure.layout.yaxis.ticktext):
            assert "<" not in text


def as_list(values: object) -> list:
    return [] if values is None else list(values)


def without_markup(text: str) -> str:
    """Remove the tags layerlab itself writes into hover text."""
    for tag in ("<br>", "<b>", "</b>", "<i>", "</i>"):
        text = text.replace(tag, "")
    return text


def test_plots_reject_other_objects() -> None:
    with pytest.raises(TypeError):
        plot.waterfall(pd.Series([1, 2]))


@pytest.mark.parametrize(
    ("path", "depth", "directory"),
    [
        ("usr/lib/x.so", 3, "usr/lib/"),
        ("usr/lib/node_modules/npm/lib/cli.js", 3, "usr/lib/node_modules/"),
        ("usr/lib/node_modules/npm/lib/cli.js", 1, "usr/"),
        ("top.txt", 2, ""),
    ],
)
def test_waste_directory(path: str, depth: int, directory: str) -> None:
    assert plot.waste_directory(path, depth) == directory


def test_waste_by_directory_sums(large: layerlab.Image) -> None:
    figure = plot.waste(large, by="directory", depth=3, top=500)
    labels = figure.layout.yaxis.ticktext
    drawn: dict[str, int] = {}
    for trace in figure.data:
        for position, size in zip(trace.y, trace.x, strict=True):
            drawn[labels[position]] = drawn.get(labels[position], 0) + size
    expected: dict[str, int] = {}
    for path, size in zip(large.waste["path"], large.waste["size"], strict=True):
        parts = PurePosixPath(str(path)).parent.parts[:3]
        key = "/" + "".join(part + "/" for part in parts)
        expected[key] = expected.get(key, 0) + int(size)
    assert drawn == expected
    # Every package directory has rewritten files; pkg007 also has the files
    # that layer 2 deleted with it, so it holds the most.
    assert max(drawn, key=drawn.__getitem__) == "/usr/share/pkg007/"


def test_waste_options_checked(small: layerlab.Image) -> None:
    with pytest.raises(layerlab.OptionError, match="by must be"):
        plot.waste(small, by="layer")
    with pytest.raises(layerlab.OptionError, match="depth"):
        plot.waste(small, by="directory", depth=0)


def test_waste_labels_stay_distinct() -> None:
    # Two long paths that differ only in the middle shorten alike from both
    # ends, so their labels keep the tail instead.
    stem = "opt/vendor/typescript-5.9.3/package/lib/"
    paths = [
        f"{stem}{language}/diagnosticMessages.generated.json"
        for language in ("cs", "de")
    ]
    table = pd.DataFrame(
        {
            "path": paths + ["etc/short.conf"],
            "size": [300, 200, 100],
            "reason": ["deleted", "deleted", "overwritten"],
            "layer": [1, 1, 0],
            "hidden_by": [2, 2, 1],
        }
    )
    labels = list(plot.waste(table).layout.yaxis.ticktext)
    assert labels[0] == "…ackage/lib/cs/diagnosticMessages.generated.json"
    assert labels[1] == "…ackage/lib/de/diagnosticMessages.generated.json"
    assert labels[2] == "/etc/short.conf"
    assert all(len(label) <= 48 for label in labels)


def test_treemap_notes_reused_colours(tmp_path: Path) -> None:
    count = len(plot.LAYER_COLORS) + 2
    layers = [Layer([file(f"f{index}", b"x" * (index + 1))]) for index in range(count)]
    path = write_oci_archive(tmp_path / "tall.tar", layers)
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        figure = plot.treemap(image)
    notes = [note.text for note in figure.layout.annotations]
    assert any("reuse the colours" in note for note in notes)
    assert len(set(plot.LAYER_COLORS)) == len(plot.LAYER_COLORS)
    assert plot.layer_color(len(plot.LAYER_COLORS)) == plot.layer_color(0)


def test_treemap_without_reused_colours(small: layerlab.Image) -> None:
    notes = [note.text for note in plot.treemap(small).layout.annotations]
    assert not any("reuse the colours" in note for note in notes)


def test_zero_layer_image_notes(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "empty.tar", [])
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        figures = {
            "waterfall": plot.waterfall(image),
            "layer_sizes": plot.layer_sizes(image),
            "treemap": plot.treemap(image),
        }
    for name, figure in figures.items():
        notes = [note.text for note in figure.layout.annotations]
        assert notes, name
    for name in ("waterfall", "layer_sizes"):
        assert figures[name].layout.xaxis.showticklabels is False, name
    assert "The image has no layers." in figures["waterfall"].layout.annotations[0].text
