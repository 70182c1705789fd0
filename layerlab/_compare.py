"""Compare two to ten images: sizes, shared layers, and final-filesystem diffs.

Every image is compared with the first one (the baseline): a pull of a later
image costs only the layers the baseline does not already have, and its
final filesystem differs from the baseline's path by path.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._errors import OptionError
from ._format import human_bytes

MAX_IMAGES = 10

DIFF_CHANGES = ("added", "removed", "modified", "metadata", "unchanged")
"""How a path of the final filesystem differs from the baseline's.

- ``added`` / ``removed``: the path exists on one side only.
- ``modified``: another kind, other content (by hash, or by size when a hash
  is missing) or another link target.
- ``metadata``: the same content, another mode or owner.
- ``unchanged``: the same kind, content, mode and owner.
"""

_DIFF_CATEGORY = pd.CategoricalDtype(DIFF_CHANGES)


@dataclass
class Comparison:
    """Two or more images side by side.

    Attributes:
        images: the compared images, the baseline first.
        labels: a short unique label per image.
        summary: one row per image: sizes, layers, files, reclaimable bytes.
        layers: one row per distinct layer (by diff_id) with its sizes and a
            boolean column per label saying whether that image has it.
        pull: one row per image: the layers and compressed bytes it needs,
            and what remains to pull when the baseline's layers are cached.
        diffs: per later label, the final-filesystem diff against the
            baseline (see :data:`DIFF_CHANGES`), changed paths first.
        directories: per later label, bytes per directory before and after,
            at the first two levels, largest change first.
    """

    images: list[Any]
    labels: list[str]
    summary: pd.DataFrame
    layers: pd.DataFrame
    pull: pd.DataFrame
    diffs: dict[str, pd.DataFrame] = field(default_factory=dict)
    directories: dict[str, pd.DataFrame] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return comparison_html(self)


def compare(*images: Any, labels: Sequence[str] | None = None) -> Comparison:
    """Compare two to ten images (Image objects or references).

    The first image is the baseline that the others are compared with.
    """
    from ._image import Image, open_image

    if len(images) == 1 and isinstance(images[0], (list, tuple)):
        images = tuple(images[0])
    if not 2 <= len(images) <= MAX_IMAGES:
        raise OptionError(f"compare takes 2 to {MAX_IMAGES} images, got {len(images)}")
    opened = [item if isinstance(item, Image) else open_image(item) for item in images]
    names = list(labels) if labels is not None else _labels(opened)
    if len(names) != len(opened) or len(set(names)) != len(names):
        raise OptionError("labels must be unique, one per image")

    comparison = Comparison(
        images=opened,
        labels=names,
        summary=_summary(opened, names),
        layers=_layers(opened, names),
        pull=pd.DataFrame(),
    )
    comparison.pull = _pull(comparison)
    for label, image in zip(names[1:], opened[1:]):
        comparison.diffs[label] = filesystem_diff(
            opened[0].filesystem, image.filesystem
        )
        comparison.directories[label] = directory_sizes(
            opened[0].filesystem, image.filesystem
        )
    return comparison


def _labels(images: list[Any]) -> list[str]:
    names = []
    for image in images:
        reference = image.reference
        for prefix in ("docker-archive:", "oci-archive:", "oci:", "docker-daemon:"):
            reference = reference.removeprefix(prefix)
        name = os.path.basename(reference.rstrip("/")) or reference
        names.append(name.removesuffix(".tar"))
    if len(set(names)) != len(names):
        names = [f"{index}: {name}" for index, name in enumerate(names)]
    return names


def _summary(images: list[Any], labels: list[str]) -> pd.DataFrame:
    rows = []
    for label, image in zip(labels, images):
        metrics = image.metrics
        rows.append(
            {
                "label": label,
                "reference": image.reference,
                "layers": len(image.layers),
                "content_bytes": metrics.content_bytes,
                "compressed_bytes": int(image.layers["compressed_size"].sum()),
                "uncompressed_bytes": int(image.layers["uncompressed_size"].sum()),
                "paths": len(image.filesystem),
                "final_bytes": metrics.final_bytes,
                "reclaimable_bytes": metrics.reclaimable_bytes,
                "efficiency": metrics.efficiency,
            }
        )
    return pd.DataFrame(rows)


def _layers(images: list[Any], labels: list[str]) -> pd.DataFrame:
    rows: dict[str, dict[str, Any]] = {}
    for label, image in zip(labels, images):
        for layer in image.layers.itertuples():
            row = rows.setdefault(
                str(layer.diff_id),
                {
                    "diff_id": str(layer.diff_id),
                    "instruction": layer.instruction,
                    "compressed_size": int(layer.compressed_size),
                    "uncompressed_size": int(layer.uncompressed_size),
                },
            )
            row[label] = True
    table = pd.DataFrame(list(rows.values()))
    for label in labels:
        table[label] = table[label].fillna(False).astype(bool)
    table["images"] = table[labels].sum(axis=1).astype(int)
    return table


def _pull(comparison: Comparison) -> pd.DataFrame:
    layers = comparison.layers
    baseline = comparison.labels[0]
    rows = []
    for label in comparison.labels:
        mine = layers[layers[label]]
        new = mine[~mine[baseline]] if label != baseline else mine
        rows.append(
            {
                "label": label,
                "layers": len(mine),
                "compressed_bytes": int(mine["compressed_size"].sum()),
                "shared_with_baseline": int(mine[baseline].sum()),
                "layers_to_pull_after_baseline": len(new),
                "bytes_to_pull_after_baseline": int(new["compressed_size"].sum()),
            }
        )
    return pd.DataFrame(rows)


def filesystem_diff(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Return how each path of two final filesystems differs, changed first.

    Columns: path, change, kind_before, kind_after, size_before, size_after,
    size_change (bytes, after minus before, 0 for a missing side's size).
    """
    columns = ["path", "kind", "size", "mode", "uid", "gid", "link_target", "hash"]
    merged = before[columns].merge(
        after[columns], on="path", how="outer", suffixes=("_before", "_after")
    )
    present_before = merged["kind_before"].notna()
    present_after = merged["kind_after"].notna()
    change = np.full(len(merged), "unchanged", dtype=object)
    content = _differs(merged, ["kind", "link_target"]) | _content_differs(merged)
    owner = _differs(merged, ["mode", "uid", "gid"])
    change[owner.to_numpy()] = "metadata"
    change[content.to_numpy()] = "modified"
    change[(~present_before).to_numpy()] = "added"
    change[(~present_after).to_numpy()] = "removed"

    size_before = merged["size_before"].fillna(0).astype("int64")
    size_after = merged["size_after"].fillna(0).astype("int64")
    table = pd.DataFrame(
        {
            "path": merged["path"].astype("string"),
            "change": pd.Categorical(change, dtype=_DIFF_CATEGORY),
            "kind_before": merged["kind_before"].astype("string"),
            "kind_after": merged["kind_after"].astype("string"),
            "size_before": size_before,
            "size_after": size_after,
            "size_change": size_after - size_before,
        }
    )
    order = table["change"].cat.codes.replace({4: 9})
    table = table.assign(_order=order, _size=-table["size_change"].abs())
    table = table.sort_values(["_order", "_size", "path"], kind="stable")
    return table.drop(columns=["_order", "_size"]).reset_index(drop=True)


def _differs(merged: pd.DataFrame, names: list[str]) -> pd.Series:
    result = pd.Series(False, index=merged.index)
    for name in names:
        left = merged[f"{name}_before"].astype(object)
        right = merged[f"{name}_after"].astype(object)
        both_missing = left.isna() & right.isna()
        result |= ~both_missing & (left.isna() | right.isna() | (left != right))
    return result.fillna(True).astype(bool)


def _content_differs(merged: pd.DataFrame) -> pd.Series:
    hashes = merged["hash_before"].notna() & merged["hash_after"].notna()
    by_hash = merged["hash_before"].astype(object) != merged["hash_after"].astype(
        object
    )
    by_size = merged["size_before"] != merged["size_after"]
    return pd.Series(np.where(hashes, by_hash, by_size), index=merged.index).astype(
        bool
    )


def directory_sizes(
    before: pd.DataFrame, after: pd.DataFrame, *, depth: int = 2
) -> pd.DataFrame:
    """Return bytes per directory (first ``depth`` levels) before and after."""
    sizes = [_per_directory(table, depth) for table in (before, after)]
    table = pd.concat(sizes, axis=1, keys=["size_before", "size_after"]).fillna(0)
    table = table.astype("int64").reset_index(names="directory")
    table["size_change"] = table["size_after"] - table["size_before"]
    table["depth"] = table["directory"].str.count("/") + 1
    order = table["size_change"].abs().sort_values(ascending=False, kind="stable")
    return table.loc[order.index].reset_index(drop=True)


def _per_directory(filesystem: pd.DataFrame, depth: int) -> pd.Series:
    regular = filesystem[filesystem["kind"].isin(["file", "hardlink"])]
    parts = regular["path"].astype(str).str.split("/")
    totals: dict[str, int] = {}
    for level in range(1, depth + 1):
        # A file directly in a shallower directory has no entry at this level.
        deep = parts.str.len() > level
        keys = parts[deep].str[:level].str.join("/")
        sums = regular.loc[deep, "size"].groupby(keys.to_numpy()).sum()
        totals.update({str(key): int(value) for key, value in sums.items()})
    return pd.Series(totals, dtype="int64")


def comparison_html(
    comparison: Comparison, *, top: int = 50, charts: bool = False
) -> str:
    """Return the comparison as an escaped HTML section.

    ``charts`` adds the size chart as a plotly div, for a page that already
    loads plotly.js (the report does).
    """
    parts = ['<div class="layerlab-comparison"><h2>Comparison</h2>']
    if charts:
        for figure in (sizes_figure(comparison), waterfalls_figure(comparison)):
            parts.append(figure.to_html(include_plotlyjs=False, full_html=False))
    parts.append(
        _html_table(
            comparison.summary,
            [
                "label",
                "layers",
                "content_bytes",
                "compressed_bytes",
                "paths",
                "reclaimable_bytes",
            ],
            sizes={"content_bytes", "compressed_bytes", "reclaimable_bytes"},
        )
    )
    parts.append("<h3>Pulling after the baseline</h3>")
    parts.append(
        _html_table(
            comparison.pull,
            [
                "label",
                "layers",
                "shared_with_baseline",
                "layers_to_pull_after_baseline",
                "bytes_to_pull_after_baseline",
            ],
            sizes={"bytes_to_pull_after_baseline"},
        )
    )
    baseline = html.escape(comparison.labels[0])
    for label, diff in comparison.diffs.items():
        changed = diff[diff["change"] != "unchanged"]
        counts = changed["change"].value_counts()
        summary = ", ".join(
            f"{int(counts.get(name, 0))} {name}" for name in DIFF_CHANGES[:-1]
        )
        parts.append(
            f"<h3>{html.escape(label)} against {baseline}</h3><p>{summary}; "
            f"net {html.escape(human_bytes(int(diff['size_change'].sum())))}.</p>"
        )
        parts.append(
            _html_table(
                changed.head(top),
                ["path", "change", "kind_before", "kind_after", "size_change"],
                sizes={"size_change"},
            )
        )
    parts.append("</div>")
    return "\n".join(parts)


def sizes_figure(comparison: Comparison) -> Any:
    """Return grouped bars of each image's content, compressed and pull bytes."""
    import plotly.graph_objects as go

    summary = comparison.summary
    labels = [html.escape(label) for label in comparison.labels]
    figure = go.Figure()
    for column, name in (
        ("content_bytes", "content"),
        ("compressed_bytes", "compressed"),
        ("reclaimable_bytes", "reclaimable by squashing"),
    ):
        figure.add_bar(name=name, x=labels, y=summary[column])
    figure.add_bar(
        name="to pull after the first image",
        x=labels,
        y=comparison.pull["bytes_to_pull_after_baseline"],
    )
    figure.update_layout(barmode="group", yaxis_title="bytes", title="Sizes")
    return figure


def waterfalls_figure(comparison: Comparison) -> Any:
    """Return the images' layer waterfalls side by side, on one size axis."""
    from plotly.subplots import make_subplots

    from ._format import short_command

    count = len(comparison.images)
    figure = make_subplots(
        rows=1,
        cols=count,
        shared_yaxes=True,
        subplot_titles=[html.escape(label) for label in comparison.labels],
    )
    for column, image in enumerate(comparison.images, start=1):
        layers = image.layers
        steps = [
            html.escape(
                f"{row.layer}: {short_command(row.created_by, row.instruction, width=30)}"
            )
            for row in layers.itertuples()
        ]
        base = layers["cumulative_size"] - layers["content_size"]
        visible = layers["content_size"] - layers["hidden_bytes"]
        figure.add_bar(
            x=steps,
            y=base,
            marker_color="rgba(0,0,0,0)",
            showlegend=False,
            hoverinfo="skip",
            row=1,
            col=column,
        )
        figure.add_bar(
            x=steps,
            y=visible,
            name="visible in the final filesystem",
            marker_color="#4c78a8",
            showlegend=column == 1,
            row=1,
            col=column,
        )
        figure.add_bar(
            x=steps,
            y=layers["hidden_bytes"],
            name="hidden by a later layer",
            marker_color="#e45756",
            showlegend=column == 1,
            row=1,
            col=column,
        )
    figure.update_layout(
        barmode="stack", title="Image size step by step", yaxis_title="content bytes"
    )
    return figure


def change_treemap(comparison: Comparison, label: str) -> Any:
    """Return a treemap of the directories whose bytes changed against the baseline."""
    import plotly.graph_objects as go

    table = comparison.directories[label]
    table = table[table["size_change"] != 0]
    shown = set(table["directory"])
    # A parent whose own change is zero (children grew and shrank by the
    # same bytes) is not drawn, so its children hang from the root.
    parents = [
        html.escape(name.rpartition("/")[0]) if name.rpartition("/")[0] in shown else ""
        for name in table["directory"]
    ]
    figure = go.Figure(
        go.Treemap(
            ids=[html.escape(name) for name in table["directory"]],
            labels=[
                html.escape(name.rpartition("/")[2]) for name in table["directory"]
            ],
            parents=parents,
            values=table["size_change"].abs(),
            branchvalues="remainder",
            customdata=table["size_change"],
            hovertemplate="%{id}<br>%{customdata:+,} bytes<extra></extra>",
            marker={
                "colors": [
                    "#2a9d8f" if v < 0 else "#e76f51" for v in table["size_change"]
                ]
            },
        )
    )
    figure.update_layout(title=f"Bytes changed per directory: {html.escape(label)}")
    return figure


def _html_table(table: pd.DataFrame, columns: list[str], *, sizes: set[str]) -> str:
    if table.empty:
        return "<p>No path differs.</p>"
    head = "".join(
        f"<th>{html.escape(name.replace('_', ' '))}</th>" for name in columns
    )
    rows = []
    for record in table[columns].itertuples(index=False):
        cells = []
        for name, value in zip(columns, record):
            text = human_bytes(int(value)) if name in sizes else _cell(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)
