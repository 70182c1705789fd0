"""Static HTML views of the widgets, for places where no widget frontend runs.

A notebook exported to HTML without widget state, or opened in a viewer
that does not run widgets, shows these instead: plain tables and an inline
SVG chart, with no script. Every string from an image is escaped.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .._format import html_text as escape
from .._format import human_bytes, short_command
from .._summary import summary_html

KEPT_COLOR = "#4c78a8"
HIDDEN_COLOR = "#d62728"
MAX_STATIC_ROWS = 200
"""Lines of a tree or file list written into a static view at most."""

_STYLE = """<style>
.layerlab-static table.ll-static { border-collapse: collapse; font-size: 12px; }
.layerlab-static table.ll-static td, .layerlab-static table.ll-static th {
  padding: 1px 8px; border-bottom: 1px solid #eee; text-align: left;
}
.layerlab-static table.ll-static .num { text-align: right; }
.layerlab-static .ll-added { color: #2a8a2a; }
.layerlab-static .ll-modified { color: #b36b00; }
.layerlab-static .ll-removed { color: #c62828; text-decoration: line-through; }
.layerlab-static .ll-unchanged { color: #777; }
.layerlab-static .note { color: #666; font-size: 12px; }
</style>"""


_NOTE = (
    "<div class='note'>Static view of layerlab.widgets.{name}: "
    "run the notebook with a kernel to {verb}.</div>"
)


def waterfall_svg(layers: pd.DataFrame, *, width: int = 640) -> str:
    """Return an inline SVG of the image growing layer by layer, waste in red."""
    label_width, row_height = 260, 20
    total = int(layers["content_size"].sum()) or 1
    scale = (width - label_width - 70) / total
    height = row_height * len(layers) + 24
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" role="img" font-family="sans-serif" font-size="11">'
        ),
        f"<title>{escape('image size by layer; red: hidden by a later layer')}</title>",
    ]
    before = 0
    for position, row in enumerate(layers.itertuples()):
        y = 4 + position * row_height
        content, hidden = int(row.content_size), int(row.hidden_bytes)
        label = short_command(_text(row.created_by), _text(row.instruction), width=38)
        x_kept = label_width + before * scale
        kept_width = max((content - hidden) * scale, 0.0)
        hidden_width = hidden * scale
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">'
            f"{escape(f'{int(row.layer)}  {label}')}</text>"
        )
        parts.append(
            f'<rect x="{x_kept:.1f}" y="{y + 2}" width="{max(kept_width, 1):.1f}" '
            f'height="{row_height - 6}" fill="{KEPT_COLOR}"/>'
        )
        if hidden:
            parts.append(
                f'<rect x="{x_kept + kept_width:.1f}" y="{y + 2}" '
                f'width="{max(hidden_width, 1):.1f}" height="{row_height - 6}" '
                f'fill="{HIDDEN_COLOR}"/>'
            )
        end = x_kept + kept_width + hidden_width
        parts.append(
            f'<text x="{end + 4:.1f}" y="{y + 13}">{escape(human_bytes(content))}</text>'
        )
        before += content
    parts.append("</svg>")
    return "".join(parts)


def tree_table(tree: pd.DataFrame, *, max_rows: int = MAX_STATIC_ROWS) -> str:
    """Return the drawn lines of an explorer's tree as an HTML table."""
    lines = []
    for row in tree.head(max_rows).itertuples(index=False):
        is_dir = row.kind == "dir" or row.entries > 0
        name = row.name + ("/" if is_dir and row.kind != "more" else "")
        indent = "&nbsp;" * (3 * int(row.depth))
        css = f"ll-{row.change}" if row.change else ""
        lines.append(
            f"<tr class='{css}'><td>{indent}{escape(name)}</td>"
            f"<td>{escape(row.change)}</td>"
            f"<td class='num'>{human_bytes(int(row.size))}</td>"
            f"<td class='num'>{int(row.entries):,}</td>"
            f"<td class='num'>{'' if row.layer < 0 else int(row.layer)}</td></tr>"
        )
    note = ""
    if len(tree) > max_rows:
        note = f"<div class='note'>{len(tree) - max_rows:,} more lines not shown</div>"
    header = (
        "<tr><th>path</th><th>change</th><th class='num'>size</th>"
        "<th class='num'>entries</th><th class='num'>layer</th></tr>"
    )
    return f"<table class='ll-static'>{header}{''.join(lines)}</table>{note}"


def explorer_html(image: Any, tree: pd.DataFrame, *, label: str) -> str:
    """Return the static view of a layer explorer."""
    return "\n".join(
        [
            _STYLE,
            "<div class='layerlab-static'>",
            _NOTE.format(name="LayerExplorer", verb="explore"),
            summary_html(image),
            waterfall_svg(image.layers),
            f"<div><b>{escape(label)}</b></div>",
            tree_table(tree),
            "</div>",
        ]
    )


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def compare_html(sizes: pd.DataFrame, rows: pd.DataFrame, *, title: str) -> str:
    """Return the static view of a comparison: sizes per image, drawn file list."""
    size_columns = [name for name in sizes.columns if name != "image"]
    header = "<tr><th>image</th>" + "".join(
        f"<th class='num'>{escape(name)}</th>" for name in size_columns
    )
    body = "".join(
        f"<tr><td>{escape(str(row['image']))}</td>"
        + "".join(
            f"<td class='num'>{human_bytes(int(row[name]))}</td>"
            for name in size_columns
        )
        + "</tr>"
        for _, row in sizes.iterrows()
    )
    files = []
    for row in rows.head(MAX_STATIC_ROWS).itertuples(index=False):
        files.append(
            f"<tr class='ll-{escape(str(row.change))}'>"
            f"<td>/{escape(str(row.path))}</td>"
            f"<td>{escape(str(row.change))}</td>"
            f"<td class='num'>{human_bytes(int(row.size_before))}</td>"
            f"<td class='num'>{human_bytes(int(row.size_after))}</td>"
            f"<td class='num'>{int(row.size_change):+,}</td></tr>"
        )
    note = ""
    if len(rows) > MAX_STATIC_ROWS:
        note = f"<div class='note'>{len(rows) - MAX_STATIC_ROWS:,} more paths</div>"
    file_header = (
        "<tr><th>path</th><th>change</th><th class='num'>before</th>"
        "<th class='num'>after</th><th class='num'>bytes</th></tr>"
    )
    return "\n".join(
        [
            _STYLE,
            "<div class='layerlab-static'>",
            _NOTE.format(name="CompareView", verb="compare"),
            f"<table class='ll-static'>{header}</tr>{body}</table>",
            f"<div><b>{escape(title)}</b></div>",
            f"<table class='ll-static'>{file_header}{''.join(files)}</table>{note}",
            "</div>",
        ]
    )
