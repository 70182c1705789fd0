"""One self-contained HTML report of one or more images.

The page is rendered from ``templates/report.html.j2`` with Jinja2's
autoescaping, so every string taken from an image (paths, commands, labels)
reaches the page as text. Figures and the rows of the long tables travel as
data blocks, ``<script>`` elements of a type browsers do not run, that
``templates/report.js`` reads and turns into charts and table cells through
``textContent``. A block is either JSON with ``<``, ``>`` and ``&`` written as
``\\u`` escapes, so that no path can close the element, or gzip-compressed
JSON in base64, which the page inflates with the browser's
``DecompressionStream``. plotly.js, 4.8 MB as it ships, is embedded the same
way in 2 MB.
"""

from __future__ import annotations

import base64
import datetime
import functools
import gzip
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import plot
from ._errors import OptionError
from ._format import human_bytes, share, short_command, visible_lines, visible_text
from ._reading import plain_reading
from ._samples import sample_name

PLOTLY_CDN = "https://cdn.plot.ly/plotly-{version}.min.js"

# Largest number of rows of each table in the page; a note under a cut table
# gives the full count. Compressed, a row costs about 30 bytes, so the cap
# per layer keeps even an image of many large layers to a few MB.
MAX_ROWS_PER_LAYER = 1000
MAX_WASTE_ROWS = 1000
MAX_TREEMAP_NODES = 2000
# Most images a report compares side by side.
MAX_COMPARED = 10
# Bars of the waste chart. When that many paths contain less than half the
# waste, the chart sums it by directory instead.
WASTE_BARS = 20

_JSON_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}

# Values of a data block's data-encoding attribute.
PLAIN = "json"
PACKED = "gzip-base64"


@dataclass(frozen=True)
class _Block:
    """The text of one data block and how it is encoded."""

    encoding: str
    text: Any  # markupsafe.Markup: JSON escaped for <script>, or base64


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
    figures: dict[str, _Block]
    layers: list[dict[str, Any]]
    waste: _Block
    waste_shown: int
    waste_by: str
    waste_bars: tuple[int, int]
    waste_count: int
    waste_bytes: int
    layer_files: list[dict[str, Any]] = field(default_factory=list)


def report(
    images: Any,
    path: str | os.PathLike[str],
    *,
    inline_plotlyjs: bool = True,
    compress: bool = True,
    title: str | None = None,
    max_rows_per_layer: int = MAX_ROWS_PER_LAYER,
    max_waste_rows: int = MAX_WASTE_ROWS,
    max_treemap_nodes: int = MAX_TREEMAP_NODES,
    comparison_html: str | None = None,
) -> Path:
    """Write an HTML report of one or more images to ``path`` and return the path.

    The file opens offline: plotly.js is embedded from the installed plotly
    package unless ``inline_plotlyjs`` is False, when the page loads it from
    the plotly CDN instead. With ``compress`` (the default) plotly.js, the
    figures and the long tables are stored gzip-compressed and inflated by the
    browser (Chrome 80, Firefox 113, Safari 16.4 and later), which makes the
    file about a third of its plain size.

    Args:
        images: an Image or a reference, or a sequence of them; references
            are opened with :func:`layerlab.open_image` and closed afterwards.
        path: the HTML file to write.
        inline_plotlyjs: embed plotly.js in the file.
        compress: store plotly.js and the page's data gzip-compressed; False
            writes them as plain text, for older browsers or to read the file.
        title: page title; by default built from the references.
        max_rows_per_layer: largest number of entries listed per layer.
        max_waste_rows: largest number of rows of the waste table.
        max_treemap_nodes: largest number of nodes of each treemap.
        comparison_html: a section placed before the images' sections, which
            must already be escaped HTML; with 2 to 10 images and no section
            given, the comparison of the images is used, and with more, a note
            that the comparison is left out.
    """
    target = validate_target(path, images)
    text = render_report(
        images,
        inline_plotlyjs=inline_plotlyjs,
        compress=compress,
        title=title,
        max_rows_per_layer=max_rows_per_layer,
        max_waste_rows=max_waste_rows,
        max_treemap_nodes=max_treemap_nodes,
        comparison_html=comparison_html,
    )
    _write_atomically(target, text)
    return target


def validate_target(path: str | os.PathLike[str], images: Any) -> Path:
    """Return ``path`` made absolute after checking it is a writable file name
    that names no input image."""
    from ._write import check_not_input

    target = Path(os.path.abspath(path))
    if not target.parent.is_dir():
        raise OptionError(f"output directory {target.parent} does not exist")
    if target.is_dir():
        raise OptionError(f"output {path} is a directory; give a file name")
    for item in _as_list(images):
        reference = getattr(item, "reference", item)
        check_not_input(target, os.fspath(reference), as_given=path)
    return target


def _write_atomically(target: Path, text: str) -> None:
    # A report that fails half-written must not replace the previous one.
    from ._write import replacing

    with replacing(target) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")


def render_report(
    images: Any,
    *,
    inline_plotlyjs: bool = True,
    compress: bool = True,
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
                compress=compress,
            )
            for index, image in enumerate(opened, start=1)
        ]
        if comparison_html is None and len(opened) > MAX_COMPARED:
            comparison_html = (
                '<p class="note">The comparison is left out: side-by-side charts '
                f"stay readable for up to {MAX_COMPARED} images, and this report "
                f"has {len(opened)}. Compare fewer images at a time.</p>"
            )
        if comparison_html is None and 2 <= len(opened):
            from ._compare import compare
            from ._compare import comparison_html as render_comparison

            comparison = compare(*opened)
            comparison_html = render_comparison(
                comparison,
                figures_html=_comparison_figures(comparison, compress=compress),
            )
    finally:
        for image in owned:
            image.close()
    return _render(
        sections,
        title=title or _default_title(sections),
        plotly_js=_plotly_js(inline=inline_plotlyjs, compress=compress),
        comparison_html=comparison_html,
    )


def _open_all(images: Any) -> tuple[list[Any], list[Any]]:
    from ._image import open_image

    items = _as_list(images)
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


def _as_list(images: Any) -> list[Any]:
    """Return one image or reference, or a sequence of them, as a list."""
    if isinstance(images, (str, os.PathLike)) or hasattr(images, "layers"):
        return [images]
    return list(images)


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
    compress: bool,
) -> _Section:
    metrics = image.metrics
    figures = {
        "waterfall": plot.waterfall(image),
        "treemap": plot.treemap(image, max_nodes=max_treemap_nodes),
        "layer_sizes": plot.layer_sizes(image),
    }
    waste_by = _waste_grouping(image.waste)
    if len(image.waste):
        figures["waste"] = plot.waste(image, top=WASTE_BARS, by=waste_by)
    waste = _waste_rows(image, max_waste_rows)
    return _Section(
        anchor=f"image-{index}",
        reference=_display_reference(str(image.reference)),
        facts=_facts(image),
        dive_metrics=_dive_rows(metrics),
        exact_metrics=_exact_rows(image, metrics),
        reading=plain_reading(image),
        warnings=[str(warning) for warning in image.warnings],
        figures={
            name: _figure_block(figure, compress=compress)
            for name, figure in figures.items()
        },
        layers=_layer_rows(image),
        waste=_block(waste, compress=compress),
        waste_by=waste_by,
        waste_bars=_waste_bars(image.waste, waste_by),
        waste_shown=len(waste),
        waste_count=len(image.waste),
        waste_bytes=int(image.waste["size"].sum()),
        layer_files=_layer_files(image, max_rows_per_layer, compress=compress),
    )


def _waste_bars(waste: pd.DataFrame, by: str) -> tuple[int, int]:
    """Return how many bars the waste chart draws, and of how many groups."""
    groups = plot.waste_groups(waste, by=by).nunique()
    return min(WASTE_BARS, groups), groups


def _waste_grouping(waste: pd.DataFrame) -> str:
    total = int(waste["size"].sum())
    largest = waste.groupby("path", observed=True)["size"].sum().nlargest(WASTE_BARS)
    return "path" if 2 * int(largest.sum()) >= total else "directory"


def _display_reference(reference: str) -> str:
    # A bundled sample is named, not shown by where the package is installed.
    name = sample_name(reference)
    return f"{name} (bundled sample)" if name else reference


def figure_json(figure: Any) -> str:
    """Return ``figure`` as JSON that is safe inside a ``<script>`` element."""
    return figure.to_json().translate(_JSON_ESCAPES)


def _figure_block(figure: Any, *, compress: bool) -> _Block:
    if compress:
        return _packed(figure.to_json())
    return _Block(PLAIN, _safe(figure_json(figure)))


def _block(value: Any, *, compress: bool) -> _Block:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if compress:
        return _packed(text)
    return _Block(PLAIN, _safe(text.translate(_JSON_ESCAPES)))


def _packed(text: str) -> _Block:
    # mtime=0 keeps the output the same for the same input.
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    return _Block(PACKED, _safe(base64.b64encode(data).decode("ascii")))


def _comparison_figures(comparison: Any, *, compress: bool) -> list[str]:
    """Return the comparison's charts as figure elements with their data blocks."""
    from ._compare_plots import sizes_figure, waterfalls_figure

    blocks = _environment().get_template("blocks.html.j2").module
    figures = (sizes_figure(comparison), waterfalls_figure(comparison))
    return [
        str(
            blocks.figure(  # type: ignore[attr-defined]
                f"comparison-figure-{index}",
                _figure_block(figure, compress=compress),
            )
        )
        for index, figure in enumerate(figures, start=1)
    ]


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
        ("layer blobs as stored", _stored(layers)),
    ]
    labels = (config.get("config") or {}).get("Labels") or {}
    for key, value in sorted(labels.items()):
        facts.append((f"label {key}", _clip(str(value), 300)))
    return facts


def _stored(layers: pd.DataFrame) -> str:
    """Return the blobs' total size and how they are compressed."""
    size = human_bytes(int(layers["compressed_size"].sum()))
    kinds = sorted({str(kind) for kind in layers["compression"].dropna()})
    if not kinds:
        return size
    if kinds == ["none"]:
        return f"{size}, uncompressed"
    return f"{size}, {' and '.join(kind for kind in kinds if kind != 'none')}" + (
        " and some uncompressed" if "none" in kinds else ""
    )


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
                f"{share(metrics.reclaimable_bytes, content)} of the content "
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


def _waste_rows(image: Any, limit: int) -> list[list[Any]]:
    """Return the waste table's rows as cells for ``report.js``.

    A cell is a text, or ``[text, sort value]`` for a number column, or
    ``[text, sort value, title]`` where the cell has a tooltip.
    """
    commands = _commands(image)
    rows = []
    for row in image.waste.head(limit).itertuples():
        size = int(row.size)
        layer = int(row.layer)
        hidden_by = None if pd.isna(row.hidden_by) else int(row.hidden_by)
        rows.append(
            [
                "/" + visible_text(str(row.path)),
                [human_bytes(size), size],
                str(row.reason),
                str(row.kind),
                [str(layer), layer, commands.get(layer, "")],
                _layer_cell(hidden_by, commands),
            ]
        )
    return rows


def _layer_files(image: Any, limit: int, *, compress: bool) -> list[dict[str, Any]]:
    files = image.files
    # Markers that hid nothing, and directories a step only rewrote, are
    # noise here: the builder writes them for every directory it touches.
    noise = (files["change"] == "noop") | (
        (files["kind"] == "dir") & (files["change"] == "unchanged")
    )
    changed = files[~noise]
    commands = _commands(image)
    kept_directories = _kept_directories(files)
    groups = dict(tuple(changed.groupby("layer", observed=True)))
    result = []
    for layer in image.layers["layer"]:
        entries = groups.get(int(layer), changed.iloc[:0])
        ordered = entries.sort_values(["size", "path"], ascending=[False, True])
        rows = [
            _file_row(row, commands, still_visible=row.Index in kept_directories)
            for row in ordered.head(limit).itertuples()
        ]
        result.append(
            {
                "layer": int(layer),
                "command": commands.get(int(layer), ""),
                "count": len(entries),
                "bytes": int(entries["size"].sum()),
                "shown": len(rows),
                "rows": _block(rows, compress=compress),
            }
        )
    return result


def _kept_directories(files: pd.DataFrame) -> set[Any]:
    """Return the index labels of hidden directories that are still visible.

    Such a directory was hidden only by later layers that rewrote it with the
    same mode and owner, up to a version in the final filesystem. The tables
    hide those rewrites as noise, so the report shows the first version as
    the visible one.
    """
    directories = files[files["kind"] == "dir"]
    versions = {
        (int(layer), path): (change, bool(visible), hidden_by)
        for layer, path, change, visible, hidden_by in zip(
            directories["layer"],
            directories["path"],
            directories["change"],
            directories["visible"],
            directories["hidden_by"],
        )
    }
    kept = set()
    hidden = directories[~directories["visible"]]
    for label, path, hidden_by in zip(
        hidden.index, hidden["path"], hidden["hidden_by"]
    ):
        while not pd.isna(hidden_by):
            change, visible, hidden_by = versions.get(
                (int(hidden_by), path), (None, False, pd.NA)
            )
            if change != "unchanged":
                break
            if visible:
                kept.add(label)
                break
    return kept


def _file_row(
    row: Any, commands: dict[int, str], *, still_visible: bool = False
) -> list[Any]:
    size = int(row.size)
    hidden_by = None if pd.isna(row.hidden_by) or still_visible else int(row.hidden_by)
    waste = "" if pd.isna(row.waste_reason) or still_visible else str(row.waste_reason)
    return [
        "/" + visible_text(str(row.path)),
        [human_bytes(size), size],
        str(row.change),
        str(row.kind),
        "yes" if row.visible or still_visible else "no",
        waste,
        _layer_cell(hidden_by, commands),
    ]


def _layer_cell(layer: int | None, commands: dict[int, str]) -> list[Any]:
    if layer is None:
        return ["", None]
    return [str(layer), layer, commands.get(layer, "")]


def _commands(image: Any) -> dict[int, str]:
    return {
        int(row.layer): visible_text(
            short_command(_text(row.created_by), _text(row.instruction), width=60)
        )
        for row in image.layers.itertuples()
    }


def _render(
    sections: list[_Section],
    *,
    title: str,
    plotly_js: dict[str, Any],
    comparison_html: str | None,
) -> str:
    from markupsafe import Markup

    from . import __version__

    template = _environment().get_template("report.html.j2")
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


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("layerlab", "templates"),
        autoescape=True,
        finalize=_visible,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["bytes"] = human_bytes
    return environment


def _visible(value: Any) -> Any:
    # Every text the page shows (commands, labels, references) may come from
    # the image, so its control and bidirectional characters show as escapes.
    # Markup (scripts, styles, data blocks) is the package's own and stays.
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return visible_lines(value)
    return value


def _plotly_js(*, inline: bool, compress: bool) -> dict[str, Any]:
    """Return how the page gets plotly.js: a CDN address, a script, or a block."""
    import plotly.offline
    from markupsafe import Markup

    if not inline:
        version = plotly.offline.get_plotlyjs_version()
        return {
            "src": PLOTLY_CDN.format(version=version),
            "inline": None,
            "block": None,
        }
    if compress:
        return {"src": None, "inline": None, "block": _packed_plotly_js()}
    return {"src": None, "inline": Markup(plotly.offline.get_plotlyjs()), "block": None}


@functools.lru_cache(maxsize=1)
def _packed_plotly_js() -> _Block:
    import plotly.offline

    return _packed(plotly.offline.get_plotlyjs())


def _package_text(name: str) -> str:
    from importlib.resources import files

    return (files("layerlab") / "templates" / name).read_text(encoding="utf-8")


def _percent(value: float) -> str:
    if math.isnan(value):  # dive's 0 / 0
        return "n/a"
    if value == float("inf"):
        return "∞"
    return f"{value:.2%}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _safe(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)
