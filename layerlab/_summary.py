"""The HTML a notebook shows for an ``Image``: sizes, both metric families, layers.

Every string taken from the image (reference, commands, labels) is escaped.
The page loads nothing: no script, no external style.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ._format import html_text as escape
from ._format import human_bytes, short_command

MAX_LAYER_ROWS = 40
"""Layers listed at most; a note under the table gives the rest's count."""

# Selectors carry two classes and the table element so that they win over
# JupyterLab's own rules for rendered HTML tables (one class and an element).
_STYLE = """<style>
.layerlab-summary.ll-root { font-size: 13px; line-height: 1.35; }
.layerlab-summary.ll-root table { border-collapse: collapse; margin: 4px 0 8px 0; }
.layerlab-summary.ll-root table th, .layerlab-summary.ll-root table td {
  padding: 1px 8px; text-align: left; border-bottom: 1px solid #e4e4e4;
  white-space: nowrap;
}
.layerlab-summary.ll-root table .num {
  text-align: right; font-variant-numeric: tabular-nums;
}
.layerlab-summary.ll-root .metrics { display: flex; flex-wrap: wrap; gap: 24px; }
.layerlab-summary.ll-root .note { color: #666; }
</style>"""

_REASON_TEXT = {
    "overwritten": "replaced by another version at the same path",
    "deleted": "removed by a whiteout or opaque directory",
    "identical": "rewritten with identical content and metadata",
    "metadata": "rewritten with identical content, other mode or owner",
}


def summary_html(image: Any, *, max_layers: int = MAX_LAYER_ROWS) -> str:
    """Return an HTML summary of ``image``: reference, sizes, metrics, layers."""
    metrics = image.metrics
    parts = [
        _STYLE,
        '<div class="layerlab-summary ll-root">',
        f"<div><b>layerlab.Image</b> <code>{escape(str(image.reference))}</code></div>",
        _facts_table(image, metrics),
        '<div class="metrics">',
        _dive_table(metrics),
        _exact_table(metrics),
        "</div>",
        _layer_table(image.layers, max_layers),
        "</div>",
    ]
    return "\n".join(parts)


def _facts_table(image: Any, metrics: Any) -> str:
    layers = image.layers
    config = image.config or {}
    platform = "/".join(
        str(config[key]) for key in ("os", "architecture", "variant") if config.get(key)
    )
    facts = [
        ("platform", platform or "not recorded"),
        ("layers", f"{len(layers)}"),
        ("paths in the final filesystem", f"{len(image.filesystem):,}"),
        ("file content, all layers", human_bytes(metrics.content_bytes)),
        ("file content, final filesystem", human_bytes(metrics.final_bytes)),
        ("uncompressed tars", human_bytes(int(layers["uncompressed_size"].sum()))),
        ("compressed blobs", human_bytes(int(layers["compressed_size"].sum()))),
    ]
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td class='num'>{escape(value)}</td></tr>"
        for name, value in facts
    )
    return f"<table>{rows}</table>"


def _dive_table(metrics: Any) -> str:
    rows = [
        ("efficiency", f"{metrics.efficiency:.2%}"),
        ("inefficient bytes", human_bytes(metrics.inefficient_bytes)),
        ("user wasted", _percent(metrics.user_wasted_percent)),
    ]
    return _metric_table("dive's metrics (as dive 0.13 computes them)", rows)


def _exact_table(metrics: Any) -> str:
    share = (
        f" ({metrics.reclaimable_bytes / metrics.content_bytes:.1%})"
        if metrics.content_bytes
        else ""
    )
    rows = [("reclaimable bytes", human_bytes(metrics.reclaimable_bytes) + share)]
    for reason, size in metrics.wasted_by_reason.items():
        rows.append((f"waste: {reason}", human_bytes(size)))
    titles = {f"waste: {reason}": text for reason, text in _REASON_TEXT.items()}
    return _metric_table("layerlab's exact waste (what squashing saves)", rows, titles)


def _metric_table(
    caption: str, rows: list[tuple[str, str]], titles: dict[str, str] | None = None
) -> str:
    titles = titles or {}
    body = "".join(
        f"<tr><th title='{escape(titles.get(name, ''))}'>{escape(name)}</th>"
        f"<td class='num'>{escape(value)}</td></tr>"
        for name, value in rows
    )
    return f"<div><div class='note'>{escape(caption)}</div><table>{body}</table></div>"


def _layer_table(layers: pd.DataFrame, max_layers: int) -> str:
    header = (
        "<tr><th class='num'>layer</th><th>instruction</th><th class='num'>size</th>"
        "<th class='num'>compressed</th><th class='num'>hidden later</th>"
        "<th class='num'>added</th><th class='num'>modified</th>"
        "<th class='num'>deleted</th></tr>"
    )
    rows = []
    for row in layers.head(max_layers).itertuples():
        command = short_command(_text(row.created_by), _text(row.instruction), width=70)
        full = _text(row.created_by) or ""
        rows.append(
            f"<tr><td class='num'>{int(row.layer)}</td>"
            f"<td title='{escape(full[:2000])}'><code>{escape(command)}</code></td>"
            f"<td class='num'>{human_bytes(int(row.content_size))}</td>"
            f"<td class='num'>{human_bytes(int(row.compressed_size))}</td>"
            f"<td class='num'>{_bytes_or_blank(int(row.hidden_bytes))}</td>"
            f"<td class='num'>{int(row.added):,}</td>"
            f"<td class='num'>{int(row.modified):,}</td>"
            f"<td class='num'>{int(row.deleted):,}</td></tr>"
        )
    note = ""
    if len(layers) > max_layers:
        note = (
            f"<div class='note'>{len(layers) - max_layers} more layers not shown</div>"
        )
    return f"<table>{header}{''.join(rows)}</table>{note}"


def _bytes_or_blank(size: int) -> str:
    return human_bytes(size) if size else ""


def _percent(value: float) -> str:
    # dive divides by the bytes above the first layer, which may be 0.
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞"
    return f"{value:.2%}"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)
