"""Plotly figures of an image: treemap, layer waterfall, waste, layer sizes.

Each function takes an :class:`~layerlab.Image`, or any object with its
tables as attributes, as its first argument. Choices are keyword-only
arguments. Each returns a ``plotly.graph_objects.Figure`` and shows or
writes nothing.

Text that comes from the image (paths, commands) is HTML-escaped before it
reaches plotly, because plotly reads ``<br>``, ``<a>`` and other tags in
labels and hover text as markup.
"""

from __future__ import annotations

import collections
import textwrap
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from . import _schema
from ._errors import OptionError
from ._format import human_bytes, plotly_text, short_command
from ._treemap import directory_tree

__all__ = ["layer_sizes", "treemap", "waste", "waterfall"]

# Colours stay the same for a layer index across figures of one image.
# 84 distinct colours, so that no two of an image's first 84 layers share one.
# Higher layers reuse them, and the treemap then adds a note.
LAYER_COLORS = (
    qualitative.Plotly + qualitative.Dark24 + qualitative.Light24 + qualitative.Alphabet
)
# Directory levels the waste chart keeps when it sums waste by directory.
WASTE_DEPTH = 3
REASON_COLORS = {
    "deleted": "#d62728",
    "overwritten": "#ff7f0e",
    "identical": "#9467bd",
    "metadata": "#17becf",
}
KEPT_COLOR = "#4c78a8"
EMPTY_STEP_COLOR = "#7f7f7f"
TEMPLATE = "plotly_white"
# SI prefixes with a B suffix (500kB, 1.5MB), the units human_bytes prints.
BYTE_AXIS = {"tickformat": ".3~s", "ticksuffix": "B"}
CARTESIAN_TOOLS = [
    "zoom",
    "pan",
    "select",
    "lasso",
    "zoomIn",
    "zoomOut",
    "autoScale",
    "resetScale",
]
TOP_LEGEND = {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"}

# Hover boxes wrap commands at this width and stop after this many lines, so
# a long RUN step does not cover the whole chart.
HOVER_WIDTH = 80
HOVER_LINES = 20


def treemap(
    image: Any,
    *,
    sunburst: bool = False,
    max_nodes: int = 2000,
    max_depth: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Draw the final filesystem by directory, sized by bytes, coloured by layer.

    A directory whose bytes come from several layers takes the colour of the
    layer with the most bytes, and its hover text gives the split. The smaller paths
    of each directory are folded into one ``(N smaller files)`` node so that
    the figure has at most ``max_nodes`` nodes whatever the image's size.
    Only regular files have bytes; a hardlink's content is counted once.

    Args:
        image: an Image, or its ``filesystem`` table.
        sunburst: draw a sunburst in place of a treemap.
        max_nodes: largest number of nodes to draw.
        max_depth: levels shown at once (plotly's ``maxdepth``); all by default.
        title: figure title.
    """
    filesystem = _table(image, "filesystem")
    layers = _optional_table(image, "layers")
    nodes = directory_tree(filesystem, max_nodes=max_nodes)
    drawn = nodes[(nodes["value"] > 0) | (nodes["id"] == "/")]
    commands = _layer_commands(layers)

    trace_type = go.Sunburst if sunburst else go.Treemap
    trace = trace_type(
        ids=drawn["id"].tolist(),
        parents=drawn["parent"].tolist(),
        labels=[plotly_text(label) for label in drawn["label"]],
        values=drawn["value"].tolist(),
        branchvalues="total",
        text=[human_bytes(value) for value in drawn["value"]],
        textinfo="label+text",
        hovertext=[_node_hover(row, commands) for row in drawn.itertuples()],
        hoverinfo="text",
        marker={"colors": [_node_color(row) for row in drawn.itertuples()]},
        maxdepth=-1 if max_depth is None else max_depth,
        sort=True,
    )
    figure = go.Figure(trace)
    used = sorted({int(layer) for layer in drawn["layer"] if layer >= 0})
    _add_layer_legend(figure, used, commands)
    figure.update_layout(
        template=TEMPLATE,
        title=title,
        # Room above the legend for plotly's toolbar, which would cover it.
        margin={**_margin(title, top_legend=False), "t": _margin(title)["t"]},
        height=600,
        showlegend=True,
        legend={
            "title": {"text": "written by layer"},
            "itemclick": False,
            "itemdoubleclick": False,
        },
        xaxis={"visible": False},
        yaxis={"visible": False},
        # The legend's placeholder traces bring cartesian tools that do
        # nothing on a treemap.
        dragmode=False,
        modebar={"remove": CARTESIAN_TOOLS},
    )
    if int(nodes["value"].iloc[0]) == 0:
        _add_note(figure, "The final filesystem has no file content.")
    elif used and max(used) >= len(LAYER_COLORS):
        figure.add_annotation(
            text=f"Layers {len(LAYER_COLORS)} and above reuse the colours of "
            "lower layers: hover over a box for the layer that wrote it.",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0,
            y=0,
            xanchor="left",
            yanchor="top",
        )
        figure.update_layout(margin={"b": 40})
    return figure


def _node_hover(row: Any, commands: dict[int, str]) -> str:
    path = "/" + row.path
    if row.aggregate:
        lines = [f"<b>{row.files:,} smaller files in {plotly_text(path)}</b>"]
    else:
        lines = [f"<b>{plotly_text(path)}</b>"]
    noun = "file" if row.files == 1 else "files"
    lines.append(f"{human_bytes(row.value)} in {row.files:,} {noun}")
    if row.layer >= 0:
        lines.append(f"layer {row.layer}: {plotly_text(commands.get(row.layer, ''))}")
    if row.layer_count > 1:
        share = row.layer_bytes / row.value
        lines.append(
            f"bytes from {row.layer_count} layers, {share:.0%} "
            f"({human_bytes(row.layer_bytes)}) from layer {row.layer}"
        )
    return "<br>".join(lines)


def _node_color(row: Any) -> str:
    if row.layer < 0:
        return "#dddddd"
    color = layer_color(int(row.layer))
    # Folded nodes are paler so that they do not read as one large file.
    return _with_alpha(color, 0.55) if row.aggregate else color


def layer_color(layer: int) -> str:
    """Return the colour that every layerlab figure gives layer ``layer``."""
    return LAYER_COLORS[layer % len(LAYER_COLORS)]


def _add_layer_legend(
    figure: go.Figure, layers: list[int], commands: dict[int, str]
) -> None:
    """Add one legend entry per layer; treemaps have no legend of their own."""
    for layer in layers:
        label = short_command(commands.get(layer), width=40)
        figure.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"color": layer_color(layer), "symbol": "square", "size": 12},
                name=plotly_text(f"{layer}: {label}"),
                hoverinfo="skip",
            )
        )


def waterfall(
    image: Any, *, label_width: int = 40, title: str | None = None
) -> go.Figure:
    """Draw the image's size growing step by step, with hidden bytes shaded.

    Each layer is a bar from the size before it to the size after it. The
    part of the layer that the final filesystem cannot show is hatched.
    History entries that made no layer (``ENV``, ``CMD``, ...) are marked on
    the cumulative line. Sizes are content bytes (``content_size``).

    Args:
        image: an Image, or its ``layers`` table (then without history).
        label_width: characters of each step's label; the hover text has the
            whole instruction.
        title: figure title.
    """
    layers = _table(image, "layers")
    history = _optional_table(image, "history")
    steps = build_steps(layers, history, label_width=label_width)
    made = steps[steps["layer"] >= 0]
    empty = steps[steps["layer"] < 0]

    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            name="visible in the final filesystem",
            orientation="h",
            y=made["position"],
            x=made["content"] - made["hidden"],
            base=made["before"],
            marker={"color": KEPT_COLOR},
            hovertext=made["hover"],
            hoverinfo="text",
        )
    )
    figure.add_trace(
        go.Bar(
            name="hidden by a later layer (waste)",
            orientation="h",
            y=made["position"],
            x=made["hidden"],
            base=made["before"] + made["content"] - made["hidden"],
            marker={
                "color": REASON_COLORS["deleted"],
                "pattern": {"shape": "/", "fgcolor": "white", "solidity": 0.4},
            },
            hovertext=made["hover"],
            hoverinfo="text",
        )
    )
    figure.add_trace(
        go.Scatter(
            name="cumulative size",
            mode="lines",
            y=steps["position"],
            x=steps["after"],
            line={"shape": "vh", "color": "#333333", "width": 1, "dash": "dot"},
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            name="instruction without a layer",
            mode="markers",
            y=empty["position"],
            x=empty["after"],
            marker={"symbol": "diamond-open", "size": 10, "color": EMPTY_STEP_COLOR},
            hovertext=empty["hover"],
            hoverinfo="text",
        )
    )
    _layout_steps(figure, steps, title=title, x_title="image size (content bytes)")
    figure.update_layout(barmode="overlay")
    if layers.empty:
        _add_note(figure, "The image has no layers.")
        # Without bars plotly invents a scale of millibytes.
        figure.update_xaxes(showticklabels=False, range=[0, 1])
    return figure


def build_steps(
    layers: pd.DataFrame, history: pd.DataFrame | None, *, label_width: int = 40
) -> pd.DataFrame:
    """Return one row per build step: layers and history entries without a layer.

    Columns: ``position`` (0 at the top), ``layer`` (-1 for a step without
    a layer), ``label``, ``hover``, ``content``, ``hidden`` and the
    cumulative sizes ``before`` and ``after`` the step.
    """
    rows = _step_rows(layers, history)
    steps = pd.DataFrame(rows, columns=["layer", "created_by", "instruction"])
    by_layer = layers.set_index("layer")
    content = by_layer["content_size"].to_dict()
    hidden = by_layer["hidden_bytes"].to_dict()
    steps["content"] = [int(content.get(layer, 0)) for layer in steps["layer"]]
    steps["hidden"] = [int(hidden.get(layer, 0)) for layer in steps["layer"]]
    steps["after"] = steps["content"].cumsum()
    steps["before"] = steps["after"] - steps["content"]
    steps["position"] = range(len(steps))
    steps["label"] = [_step_label(row, label_width) for row in steps.itertuples()]
    steps["hover"] = [_step_hover(row) for row in steps.itertuples()]
    return steps


def _step_rows(layers: pd.DataFrame, history: pd.DataFrame | None) -> list[tuple]:
    rows: list[tuple] = []
    seen: set[int] = set()
    if history is not None:
        for entry in history.itertuples():
            layer = -1 if pd.isna(entry.layer) else int(entry.layer)
            rows.append((layer, _text(entry.created_by), _text(entry.instruction)))
            seen.add(layer)
    # Layers the history does not account for (no history, or too short).
    for entry in layers.itertuples():
        if int(entry.layer) not in seen:
            rows.append(
                (int(entry.layer), _text(entry.created_by), _text(entry.instruction))
            )
    return rows


def _step_label(row: Any, width: int) -> str:
    command = short_command(_text(row.created_by), _text(row.instruction), width=width)
    prefix = f"{row.layer}" if row.layer >= 0 else "–"
    return plotly_text(f"{prefix}  {command}")


def _step_hover(row: Any) -> str:
    command = _wrap(_text(row.created_by) or _text(row.instruction) or "(no history)")
    if row.layer < 0:
        return f"{command}<br><i>no layer: this instruction changes only the config</i>"
    lines = [
        command,
        f"layer {row.layer}: {human_bytes(row.content)}",
        f"image size after this step: {human_bytes(row.after)}",
    ]
    if row.hidden:
        lines.append(f"{human_bytes(row.hidden)} of it hidden by later layers")
    return "<br>".join(lines)


def waste(
    image: Any,
    *,
    top: int = 20,
    by: str = "path",
    depth: int = WASTE_DEPTH,
    title: str | None = None,
) -> go.Figure:
    """Draw the ``top`` paths or directories with the most hidden bytes, by reason.

    Bytes are summed over every hidden version of a path (a file rewritten in
    three layers has two hidden versions). With ``by="directory"`` the bars
    are directories ``depth`` levels deep at most (``/usr/lib/node_modules/``
    for depth 3), each summing the hidden versions below it: the view for
    images whose waste is thousands of small files.

    Args:
        image: an Image, or its ``waste`` table.
        top: number of bars to draw.
        by: ``"path"`` or ``"directory"``.
        depth: with ``by="directory"``, how many directory levels to keep.
        title: figure title.
    """
    if top < 1:
        raise OptionError(f"top must be at least 1, not {top}")
    if by not in ("path", "directory"):
        raise OptionError(f"by must be 'path' or 'directory', not {by!r}")
    if depth < 1:
        raise OptionError(f"depth must be at least 1, not {depth}")
    table = _table(image, "waste")
    table = table.assign(group=waste_groups(table, by=by, depth=depth).to_numpy())
    totals = table.groupby("group")["size"].sum()
    groups = totals.sort_values(ascending=False, kind="stable").head(top).index
    chosen = table[table["group"].isin(groups)]
    position = {group: index for index, group in enumerate(groups)}

    figure = go.Figure()
    for reason in _schema.WASTE_REASONS:
        part = chosen[chosen["reason"] == reason]
        if part.empty:
            continue
        grouped = part.groupby("group")
        sizes = grouped["size"].sum()
        figure.add_trace(
            go.Bar(
                name=reason,
                orientation="h",
                y=[position[group] for group in sizes.index],
                x=sizes.to_list(),
                marker={"color": REASON_COLORS[reason]},
                hovertext=[
                    _waste_hover(group, reason, rows, by=by) for group, rows in grouped
                ],
                hoverinfo="text",
            )
        )
    labels = [plotly_text(label) for label in _path_labels(list(groups), 48)]
    figure.update_layout(
        template=TEMPLATE,
        title=title,
        barmode="stack",
        height=max(260, 120 + 26 * len(groups)),
        margin=_margin(title),
        xaxis={"title": {"text": "hidden bytes"}, **BYTE_AXIS},
        yaxis={
            "tickvals": list(range(len(groups))),
            "ticktext": labels,
            "autorange": "reversed",
            "automargin": True,
        },
        legend={"title": {"text": "reason"}, **TOP_LEGEND},
        showlegend=True,
    )
    if table.empty:
        _add_note(figure, "No waste: every stored byte is visible in the final image.")
    return figure


def waste_groups(
    waste: pd.DataFrame, *, by: str = "path", depth: int = WASTE_DEPTH
) -> pd.Series:
    """Return the bar of the waste chart that each row of ``waste`` adds to.

    That is the row's path, or with ``by="directory"`` its directory at most
    ``depth`` levels deep (see :func:`waste_directory`).
    """
    paths = waste["path"].astype(str)
    if by == "path":
        return paths
    return paths.map(lambda path: waste_directory(path, depth))


def waste_directory(path: str, depth: int) -> str:
    """Return the directory, at most ``depth`` levels deep, that contains ``path``.

    Paths are relative to the root and directories end in ``/``: ``usr/lib/``
    for ``usr/lib/x.so`` and any depth from 2, ``""`` (the root) for a file in
    the root.
    """
    parents = path.split("/")[:-1][:depth]
    return "/".join(parents) + "/" if parents else ""


def _waste_hover(group: str, reason: str, rows: pd.DataFrame, *, by: str) -> str:
    lines = [
        f"<b>{plotly_text('/' + group)}</b>",
        f"{reason}: {human_bytes(rows['size'].sum())}",
    ]
    if by == "directory":
        lines[1] += f" in {len(rows):,} hidden versions"
        largest = rows.sort_values("size", ascending=False, kind="stable")
        for row in largest.head(HOVER_LINES - 2).itertuples():
            lines.append(f"{plotly_text('/' + str(row.path))}: {human_bytes(row.size)}")
        return "<br>".join(lines)
    for row in rows.itertuples():
        hidden_by = (
            "" if pd.isna(row.hidden_by) else f", hidden by layer {row.hidden_by}"
        )
        lines.append(f"layer {row.layer}: {human_bytes(row.size)}{hidden_by}")
    return "<br>".join(lines[:HOVER_LINES])


def _blob_label(layers: pd.DataFrame) -> str:
    if "compression" not in layers:
        return "blob as stored"
    kinds = sorted({str(kind) for kind in layers["compression"].dropna()})
    names = ", ".join("uncompressed" if kind == "none" else kind for kind in kinds)
    return f"blob as stored ({names})" if names else "blob as stored"


def layer_sizes(
    image: Any, *, label_width: int = 40, title: str | None = None
) -> go.Figure:
    """Draw each layer's content, uncompressed and stored sizes side by side.

    Content is the sum of the tar headers' size fields, which dive calls a
    layer's size. Uncompressed is the whole tar stream with its headers and
    padding, and the blob is the layer as stored in the image, compressed
    (gzip or zstd) or not (``docker save`` writes plain tar).

    Args:
        image: an Image, or its ``layers`` table.
        label_width: characters of each layer's label.
        title: figure title.
    """
    layers = _table(image, "layers")
    positions = list(range(len(layers)))
    figure = go.Figure()
    series = (
        ("content", "content_size", KEPT_COLOR),
        ("uncompressed tar", "uncompressed_size", "#72b7b2"),
        (_blob_label(layers), "compressed_size", "#f58518"),
    )
    for name, column, color in series:
        figure.add_trace(
            go.Bar(
                name=name,
                orientation="h",
                y=positions,
                x=layers[column].tolist(),
                marker={"color": color},
                hovertext=[
                    f"layer {layer}: {name} {human_bytes(size)}"
                    for layer, size in zip(layers["layer"], layers[column])
                ],
                hoverinfo="text",
            )
        )
    labels = [
        plotly_text(
            f"{row.layer}  {short_command(_text(row.created_by), _text(row.instruction), width=label_width)}"
        )
        for row in layers.itertuples()
    ]
    figure.update_layout(
        template=TEMPLATE,
        title=title,
        barmode="group",
        height=max(260, 100 + 48 * len(layers)),
        margin=_margin(title),
        xaxis={"title": {"text": "bytes"}, **BYTE_AXIS},
        legend=TOP_LEGEND,
        yaxis={
            "tickvals": positions,
            "ticktext": labels,
            "autorange": "reversed",
            "automargin": True,
        },
    )
    if layers.empty:
        _add_note(figure, "The image has no layers.")
        # Without bars plotly invents a scale of millibytes.
        figure.update_xaxes(showticklabels=False, range=[0, 1])
    return figure


def _layout_steps(
    figure: go.Figure, steps: pd.DataFrame, *, title: str | None, x_title: str
) -> None:
    figure.update_layout(
        template=TEMPLATE,
        title=title,
        height=max(260, 120 + 30 * len(steps)),
        margin=_margin(title),
        xaxis={"title": {"text": x_title}, "rangemode": "tozero", **BYTE_AXIS},
        yaxis={
            "tickvals": steps["position"].tolist(),
            "ticktext": steps["label"].tolist(),
            "autorange": "reversed",
            "automargin": True,
        },
        legend=TOP_LEGEND,
    )


def _margin(title: str | None, *, top_legend: bool = True) -> dict[str, int]:
    top, bottom = 10, 10
    if title:
        top += 40
    if top_legend:
        top += 30
        bottom = 50
    return {"t": top, "l": 10, "r": 10, "b": bottom}


def _add_note(figure: go.Figure, text: str) -> None:
    figure.add_annotation(
        text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5
    )


def _table(image: Any, name: str) -> pd.DataFrame:
    if isinstance(image, pd.DataFrame):
        return image
    table = getattr(image, name, None)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"expected an Image or its {name} table, not {type(image).__name__}"
        )
    return table


def _optional_table(image: Any, name: str) -> pd.DataFrame | None:
    table = getattr(image, name, None)
    return table if isinstance(table, pd.DataFrame) else None


def _layer_commands(layers: pd.DataFrame | None) -> dict[int, str]:
    if layers is None:
        return {}
    return {
        int(row.layer): short_command(
            _text(row.created_by), _text(row.instruction), width=60
        )
        for row in layers.itertuples()
    }


def _wrap(text: str) -> str:
    lines = textwrap.wrap(text, HOVER_WIDTH, break_long_words=True) or [""]
    if len(lines) > HOVER_LINES:
        lines = lines[:HOVER_LINES] + ["…"]
    return "<br>".join(plotly_text(line) for line in lines)


def _shorten_path(path: str, width: int) -> str:
    text = "/" + path
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep // 3] + "…" + text[-(keep - keep // 3) :]


def _path_labels(paths: list[str], width: int) -> list[str]:
    """Shorten each path to ``width`` characters, keeping the labels distinct.

    Paths that differ only in the middle (``lib/cs/x.json``, ``lib/de/x.json``)
    shorten to the same label, so those keep their tail instead, and any that
    still collide get a number.
    """
    labels = [_shorten_path(path, width) for path in paths]
    counts = collections.Counter(labels)
    for index, path in enumerate(paths):
        if counts[labels[index]] > 1:
            labels[index] = "…" + ("/" + path)[-(width - 1) :]
    seen: collections.Counter[str] = collections.Counter()
    repeated = {
        label for label, count in collections.Counter(labels).items() if count > 1
    }
    for index, label in enumerate(labels):
        if label in repeated:
            seen[label] += 1
            labels[index] = f"{label} ({seen[label]})"
    return labels


def _with_alpha(color: str, alpha: float) -> str:
    red, green, blue = (int(color[index : index + 2], 16) for index in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)
