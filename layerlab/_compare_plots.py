"""Plotly figures of a :class:`~layerlab._compare.Comparison`.

Each function takes the comparison first, returns a figure and shows or
writes nothing. Labels, paths and commands come from the images, so they
are HTML-escaped before they reach plotly, which reads tags in text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ._errors import OptionError
from ._format import human_bytes, plotly_text, short_command
from ._pull import layer_keys

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from ._compare import Comparison

TEMPLATE = "plotly_white"
OWN_COLOR = "#4c78a8"
SHARED_COLOR = "#9ecae9"
HIDDEN_COLOR = "#e45756"
GREW_COLOR = "#e76f51"
SHRANK_COLOR = "#2a9d8f"
BYTE_AXIS = {"tickformat": ".3~s", "ticksuffix": "B"}


def sizes_figure(comparison: Comparison) -> go.Figure:
    """Draw grouped bars of each image's content, compressed and pull bytes."""
    import plotly.graph_objects as go

    summary = comparison.summary
    labels = [plotly_text(label) for label in comparison.labels]
    figure = go.Figure()
    for column, name in (
        ("content_bytes", "content"),
        ("compressed_bytes", "layer blobs as stored"),
        ("reclaimable_bytes", "reclaimable by squashing"),
    ):
        figure.add_bar(name=name, x=labels, y=summary[column])
    figure.add_bar(
        name="to pull (the first from nothing, the others after it)",
        x=labels,
        y=comparison.pull["bytes_to_pull_after_baseline"],
    )
    figure.update_layout(
        barmode="group",
        template=TEMPLATE,
        yaxis={"title": "bytes", **BYTE_AXIS},
        title="Sizes",
        height=420,
    )
    return figure


def waterfalls_figure(comparison: Comparison) -> go.Figure:
    """Draw the images' layer waterfalls side by side, on one size axis.

    Each bar is a layer, from the image's content before the step to after
    it: visible bytes in blue (light blue for a layer the baseline has too,
    by chain ID) and bytes a later layer hides in red.
    """
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=1,
        cols=len(comparison.images),
        shared_yaxes=True,
        subplot_titles=[plotly_text(label) for label in comparison.labels],
    )
    baseline = set(layer_keys(comparison.images[0], "chain_id"))
    for column, image in enumerate(comparison.images, start=1):
        _add_waterfall(figure, image, baseline, column)
    figure.update_layout(
        barmode="stack",
        template=TEMPLATE,
        title="Image size step by step (light blue: layer shared with the first)",
        yaxis={"title": "content bytes", **BYTE_AXIS},
        # Room under the bars for the tilted instruction labels.
        height=520,
        margin={"b": 160},
    )
    return figure


def _add_waterfall(figure: Any, image: Any, baseline: set[str], column: int) -> None:
    layers = image.layers
    commands = [
        short_command(_text(row.created_by), _text(row.instruction), width=30)
        for row in layers.itertuples()
    ]
    steps = [
        plotly_text(f"{index}: {command}") for index, command in enumerate(commands)
    ]
    shared = pd.Series(
        [key in baseline for key in layer_keys(image, "chain_id")], index=layers.index
    )
    hover = [
        f"{step}<br>{'shared with the first image' if flag else 'own layer'}"
        for step, flag in zip(steps, shared)
    ]
    base = layers["cumulative_size"] - layers["content_size"]
    visible = layers["content_size"] - layers["hidden_bytes"]
    traces = (
        (base, "rgba(0,0,0,0)", ""),
        (
            visible.where(shared, 0),
            SHARED_COLOR,
            "visible, layer shared with the first",
        ),
        (visible.where(~shared, 0), OWN_COLOR, "visible, own layer"),
        (layers["hidden_bytes"], HIDDEN_COLOR, "hidden by a later layer"),
    )
    in_legend = {trace.name for trace in figure.data if trace.showlegend}
    for values, color, name in traces:
        # Each kind of bar gets one legend entry, from the first image that has it.
        legend = bool(name) and name not in in_legend and bool(values.any())
        figure.add_bar(
            x=steps,
            y=values,
            marker_color=color,
            name=name,
            legendgroup=name or None,
            showlegend=legend,
            # Sizes in the hover read as everywhere else ("28.1 kB"), not in
            # plotly's own "28.108k".
            hovertext=[
                f"{text}<br>{name}: {human_bytes(value)}"
                for text, value in zip(hover, values)
            ]
            if name
            else None,
            hoverinfo="text" if name else "skip",
            row=1,
            col=column,
        )


def change_treemap(comparison: Comparison, label: str | None = None) -> go.Figure:
    """Draw where content bytes changed against the baseline, by directory.

    Area is the bytes changed (growth and shrinkage both count), and colour
    shows whether the directory grew or shrank in total. Directories go two levels
    deep; files directly in the root sit under ``/``.
    """
    import plotly.graph_objects as go

    label = label if label is not None else comparison.labels[1]
    if label not in comparison.diffs:
        raise OptionError(
            f"no diff for {label!r}: use one of {', '.join(comparison.diffs)}"
        )
    nodes = _change_nodes(comparison.diffs[label])
    figure = go.Figure(
        go.Treemap(
            ids=[plotly_text(node) for node in nodes["id"]],
            labels=[plotly_text(node) for node in nodes["name"]],
            parents=[plotly_text(node) for node in nodes["parent"]],
            values=nodes["changed"],
            branchvalues="total",
            customdata=nodes[["net"]],
            hovertemplate="%{id}<br>%{value:,} bytes changed, net "
            "%{customdata[0]:+,}<extra></extra>",
            marker={
                "colors": [
                    SHRANK_COLOR if net < 0 else GREW_COLOR for net in nodes["net"]
                ]
            },
        )
    )
    figure.update_layout(
        template=TEMPLATE,
        title=f"Bytes changed per directory: {plotly_text(label)}",
    )
    return figure


def _change_nodes(diff: pd.DataFrame) -> pd.DataFrame:
    """Return treemap nodes (id, name, parent, changed, net) for a diff."""
    changed = diff[diff["size_change"] != 0]
    parts = changed["path"].astype(str).str.split("/")
    top = parts.map(lambda items: items[0] if len(items) > 1 else "/")
    second = parts.map(lambda items: "/".join(items[:2]) if len(items) > 2 else "")
    frame = pd.DataFrame(
        {
            "top": top.to_numpy(),
            "second": second.to_numpy(),
            "change": changed["size_change"].to_numpy(),
        }
    )
    frame["leaf"] = frame["second"].where(frame["second"] != "", frame["top"])
    frame["size"] = frame["change"].abs()
    rows = []
    for leaf, group in frame.groupby("leaf", sort=True):
        parent = str(group["top"].iloc[0])
        if leaf != parent:
            rows.append(_node(str(leaf), str(leaf).rpartition("/")[2], parent, group))
    for top_name, group in frame.groupby("top", sort=True):
        rows.append(_node(str(top_name), str(top_name), "", group))
    return pd.DataFrame(rows, columns=["id", "name", "parent", "changed", "net"])


def _node(node: str, name: str, parent: str, group: pd.DataFrame) -> dict[str, Any]:
    return {
        "id": node,
        "name": name,
        "parent": parent,
        "changed": int(group["size"].sum()),
        "net": int(group["change"].sum()),
    }


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)
