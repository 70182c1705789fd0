"""One self-contained HTML report of one or more images.

The page is rendered from ``templates/report.html.j2`` with Jinja2's
autoescaping, so every string taken from an image (paths, commands, labels)
reaches the page as text. Figures travel as JSON inside
``<script type="application/json">`` elements, with ``<``, ``>`` and ``&``
written as ``\\u`` escapes so that no path can close the element.
"""

from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import plot
from ._errors import OptionError
from ._format import human_bytes, short_command
from ._reading import plain_reading

PLOTLY_CDN = "https://cdn.plot.ly/plotly-{version}.min.js"

# Largest number of rows of each table in the page; a note under a cut table
# gives the full count. With these defaults the report of a 100,000-file
# image is about 6 MB, most of it plotly.js.
# NOTE: the cap is per layer, so an image of many large layers still gives a
# large page (about 200 bytes per row).
MAX_ROWS_PER_LAYER = 1000
MAX_WASTE_ROWS = 1000
MAX_TREEMAP_NODES = 2000

_JSON_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


@dataclass
class _Section:
    """The data the template needs to draw one image."""

    anchor: str
    reference: str
    facts: list[tuple[str, str]]
    dive_metrics: list[tuple[str, str, str]]
    exact_metrics: list[tuple[str, str, str]]
    reading: str
    warnings: list[str]
    figures: dict[str, str]
    layers: list[dict[str, Any]]
    waste: list[dict[str, Any]]
    waste_count: int
    waste_bytes: int
    layer_files: list[dict[str, Any]] = field(default_factory=list)


def report(
    images: Any,
    path: str | os.PathLike[str],
    *,
    inline_plotlyjs: bool = True,
    title: str | None = None,
    max_rows_per_layer: int = MAX_ROWS_PER_LAYER,
    max_waste_rows: int = MAX_WASTE_ROWS,
    max_treemap_nodes: int = MAX_TREEMAP_NODES,
    comparison_html: str | None = None,
) -> Path:
    """Write an HTML report of one or more images to ``path`` and return the path.

    The file opens offline: plotly.js is inlined from the installed plotly
    package (about 5 MB) unless ``inline_plotlyjs`` is False, when the page
    loads it from the plotly CDN instead.

    Args:
        images: an Image or a reference, or a sequence of them; references
            are opened with :func:`layerlab.open_image` and closed afterwards.
        path: the HTML file to write.
        inline_plotlyjs: embed plotly.js in the file.
        title: page title; by default built from the references.
        max_rows_per_layer: largest number of entries listed per layer.
        max_waste_rows: largest number of rows of the waste table.
        max_treemap_nodes: largest number of nodes of each treemap.
        comparison_html: a section placed before the images' sections, which
            must already be escaped HTML; with 2 to 10 images and no section
            given, the comparison of the images is used.
    """
    text = render_report(
        images,
        inline_plotlyjs=inline_plotlyjs,
        title=title,
        max_rows_per_layer=max_rows_per_layer,
        max_waste_rows=max_waste_rows,
        max_treemap_nodes=max_treemap_nodes,
        comparison_html=comparison_html,
    )
    target = Path(path)
    target.write_text(text, encoding="utf-8")
    return target


def render_report(
    images: Any,
    *,
    inline_plotlyjs: bool = True,
    title: str | None = None,
    max_rows_per_layer: int = MAX_ROWS_PER_LAYER,
    max_waste_rows: int = MAX_WASTE_ROWS,
    max_treemap_nodes: int = MAX_TREEMAP_NODES,
    comparison_html: str | None = None,
) -> str:
    """Return the HTML text that :func:`report` writes."""
    for name, value in (
        ("max_rows_per_layer", max_rows_per_layer),
        ("max_waste_rows", max_waste_rows),
    ):
        if value < 0:
            raise OptionError(f"{name} must be 0 or more, not {value}")
    opened, owned = _open_all(images)
    try:
        sections = [
            _section(
                image,
                index,
                max_rows_per_layer=max_rows_per_layer,
                max_waste_rows=max_waste_rows,
                max_treemap_nodes=max_treemap_nodes,
            )
            for index, image in enumerate(opened, start=1)
        ]
        if comparison_html is None and 2 <= len(opened) <= 10:
            from ._compare import compare
            from ._compare import comparison_html as render_comparison

            comparison_html = render_comparison(compare(*opened), charts=True)
    finally:
        for image in owned:
            image.close()
    return _render(
        sections,
        title=title or _default_title(sections),
        inline_plotlyjs=inline_plotlyjs,
        comparison_html=comparison_html,
    )


def _open_all(images: Any) -> tuple[list[Any], list[Any]]:
    from ._image import open_image

    if isinstance(images, (str, os.PathLike)) or hasattr(images, "layers"):
        items = [images]
    else:
        items = list(images)
    if not items:
        raise OptionError("no image to report on")
    opened: list[Any] = []
    owned: list[Any] = []
    try:
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                image = open_image(os.fspath(item))
                owned.append(image)
                opened.append(image)
            else:
                opened.append(item)
    except BaseException:
        for image in owned:
            image.close()
        raise
    return opened, owned


def _default_title(sections: list[_Section]) -> str:
    if len(sections) == 1:
        return f"layerlab report: {sections[0].reference}"
    return f"layerlab report: {len(sections)} images"


def _section(
    image: Any,
    index: int,
    *,
    max_rows_per_layer: int,
    max_waste_rows: int,
    max_treemap_nodes: int,
) -> _Section:
    metrics = image.metrics
    figures = {
        "waterfall": plot.waterfall(image),
        "treemap": plot.treemap(image, max_nodes=max_treemap_nodes),
        "layer_sizes": plot.layer_sizes(image),
    }
    if len(image.waste):
        figures["waste"] = plot.waste(image)
    return _Section(
        anchor=f"image-{index}",
        reference=str(image.reference),
        facts=_facts(image),
        dive_metrics=_dive_rows(metrics),
        exact_metrics=_exact_rows(image, metrics),
        reading=plain_reading(image),
        warnings=[str(warning) for warning in image.warnings],
        figures={name: _safe(figure_json(figure)) for name, figure in figures.items()},
        layers=_layer_rows(image),
        waste=_waste_rows(image, max_waste_rows),
        waste_count=len(image.waste),
        waste_bytes=int(image.waste["size"].sum()),
        layer_files=_layer_files(image, max_rows_per_layer),
    )


def figure_json(figure: Any) -> str:
    """Return ``figure`` as JSON that is safe inside a ``<script>`` element."""
    return figure.to_json().translate(_JSON_ESCAPES)


def _facts(image: Any) -> list[tuple[str, str]]:
    config = image.config
    layers = image.layers
    platform = "/".join(
        str(config[key]) for key in ("os", "architecture", "variant") if config.get(key)
    )
    facts = [
        ("platform", platform or "not recorded"),
        ("created", str(config.get("created") or "not recorded")),
        ("layers", f"{len(layers)}"),
        ("history entries", f"{len(image.history)}"),
        ("paths in the final filesystem", f"{len(image.filesystem):,}"),
        ("file content, all layers", human_bytes(int(layers["content_size"].sum()))),
        ("compressed, all layers", human_bytes(int(layers["compressed_size"].sum()))),
    ]
    labels = (config.get("config") or {}).get("Labels") or {}
    for key, value in sorted(labels.items()):
        facts.append((f"label {key}", _clip(str(value), 300)))
    return facts


def _dive_rows(metrics: Any) -> list[tuple[str, str, str]]:
    dive = metrics.dive
    return [
        (
            "efficiency",
            f"{metrics.efficiency:.2%}",
            "smallest copy of each path divided by all copies",
        ),
        (
            "inefficient bytes",
            human_bytes(metrics.inefficient_bytes),
            "every copy of paths found in two or more layers",
        ),
        (
            "user wasted",
            _percent(metrics.user_wasted_percent),
            (
                f"inefficient bytes over the {human_bytes(dive.user_size_bytes)} "
                "above the first layer"
            ),
        ),
    ]


def _exact_rows(image: Any, metrics: Any) -> list[tuple[str, str, str]]:
    content = metrics.content_bytes
    rows = [
        (
            "reclaimable bytes",
            human_bytes(metrics.reclaimable_bytes),
            (
                f"{_share(metrics.reclaimable_bytes, content)} of the content "
                "stored, what squashing every layer saves"
            ),
        ),
        ("final filesystem", human_bytes(metrics.final_bytes), "visible content"),
    ]
    for reason, size in metrics.wasted_by_reason.items():
        rows.append((f"waste: {reason}", human_bytes(size), _REASON_TEXT[reason]))
    return rows


_REASON_TEXT = {
    "overwritten": "replaced by another version at the same path",
    "deleted": "removed by a whiteout or opaque directory",
    "identical": "rewritten with identical content and metadata",
    "metadata": "rewritten with identical content, other mode or owner",
}


def _layer_rows(image: Any) -> list[dict[str, Any]]:
    rows = []
    for row in image.layers.itertuples():
        created_by = _text(row.created_by)
        rows.append(
            {
                "layer": int(row.layer),
                "instruction": _text(row.instruction) or "",
                "command": short_command(created_by, _text(row.instruction), width=90),
                "full_command": _clip(created_by or "", 4000),
                "content": int(row.content_size),
                "uncompressed": int(row.uncompressed_size),
                "compressed": int(row.compressed_size),
                "added": int(row.added),
                "modified": int(row.modified),
                "deleted": int(row.deleted),
                "hidden": int(row.hidden_bytes),
                "cumulative": int(row.cumulative_size),
                "digest": _text(row.digest) or "",
            }
        )
    return rows


def _waste_rows(image: Any, limit: int) -> list[dict[str, Any]]:
    commands = _commands(image)
    rows = []
    for row in image.waste.head(limit).itertuples():
        hidden_by = None if pd.isna(row.hidden_by) else int(row.hidden_by)
        rows.append(
            {
                "path": "/" + str(row.path),
                "size": int(row.size),
                "reason": str(row.reason),
                "kind": str(row.kind),
                "layer": int(row.layer),
                "layer_command": commands.get(int(row.layer), ""),
                "hidden_by": hidden_by,
                "hidden_by_command": commands.get(hidden_by, "")
                if hidden_by is not None
                else "",
            }
        )
    return rows


def _layer_files(image: Any, limit: int) -> list[dict[str, Any]]:
    files = image.files
    # Markers that hid nothing, and directories a step only rewrote, are
    # noise here: the builder writes them for every directory it touches.
    noise = (files["change"] == "noop") | (
        (files["kind"] == "dir") & (files["change"] == "unchanged")
    )
    changed = files[~noise]
    commands = _commands(image)
    groups = dict(tuple(changed.groupby("layer", observed=True)))
    result = []
    for layer in image.layers["layer"]:
        entries = groups.get(int(layer), changed.iloc[:0])
        ordered = entries.sort_values(["size", "path"], ascending=[False, True])
        result.append(
            {
                "layer": int(layer),
                "command": commands.get(int(layer), ""),
                "count": len(entries),
                "bytes": int(entries["size"].sum()),
                "rows": [_file_row(row) for row in ordered.head(limit).itertuples()],
            }
        )
    return result


def _file_row(row: Any) -> dict[str, Any]:
    return {
        "path": "/" + str(row.path),
        "change": str(row.change),
        "kind": str(row.kind),
        "size": int(row.size),
        "visible": bool(row.visible),
        "reason": "" if pd.isna(row.waste_reason) else str(row.waste_reason),
        "hidden_by": "" if pd.isna(row.hidden_by) else int(row.hidden_by),
    }


def _commands(image: Any) -> dict[int, str]:
    return {
        int(row.layer): short_command(
            _text(row.created_by), _text(row.instruction), width=60
        )
        for row in image.layers.itertuples()
    }


def _render(
    sections: list[_Section],
    *,
    title: str,
    inline_plotlyjs: bool,
    comparison_html: str | None,
) -> str:
    import jinja2
    import plotly.offline
    from markupsafe import Markup

    from . import __version__

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("layerlab", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["bytes"] = human_bytes
    template = environment.get_template("report.html.j2")
    plotly_js: dict[str, Any]
    if inline_plotlyjs:
        plotly_js = {"inline": Markup(plotly.offline.get_plotlyjs()), "src": None}
    else:
        version = plotly.offline.get_plotlyjs_version()
        plotly_js = {"inline": None, "src": PLOTLY_CDN.format(version=version)}
    return template.render(
        title=title,
        sections=sections,
        plotly_js=plotly_js,
        style=Markup(_package_text("report.css")),
        script=Markup(_package_text("report.js")),
        comparison_html=Markup(comparison_html) if comparison_html else None,
        version=__version__,
        generated=datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
    )


def _package_text(name: str) -> str:
    from importlib.resources import files

    return (files("layerlab") / "templates" / name).read_text(encoding="utf-8")


def _percent(value: float) -> str:
    if math.isnan(value):  # dive's 0 / 0
        return "n/a"
    if value == float("inf"):
        return "∞"
    return f"{value:.2%}"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "0%"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _safe(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)
