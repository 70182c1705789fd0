"""``LayerExplorer``: pick a layer, browse its files, follow a path's history."""

from __future__ import annotations

import logging
import os
import time
from types import SimpleNamespace
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import plot
from .._errors import OptionError
from .._format import html_text, human_bytes, short_command
from ._base import ChartBox, filter_row
from ._history import path_history
from ._static import explorer_html
from ._table import RowTable
from ._tree import MODES, SORTS, VIEW_CHANGES, FileIndex, Filters, TreeView, parse_size

logger = logging.getLogger("layerlab")

MORE_PREFIX = "/more:"
"""Key prefix of a tree's ``more`` lines; real paths never start with ``/``."""

_MODE_LABELS = {"layer": "this layer's changes", "aggregate": "all layers up to it"}
_TREE_COLUMNS = [
    {"label": "path", "align": "left"},
    {"label": "change", "align": "left"},
    {"label": "size", "align": "right"},
    {"label": "entries", "align": "right"},
    {"label": "layer", "align": "right"},
]
_LAYER_COLUMNS = [
    {"label": "layer", "align": "left"},
    {"label": "instruction", "align": "left"},
    {"label": "size", "align": "right"},
    {"label": "waste", "align": "right"},
    {"label": "+", "align": "right"},
    {"label": "~", "align": "right"},
    {"label": "−", "align": "right"},
]
_HISTORY_COLUMNS = [
    {"label": "layer", "align": "left"},
    {"label": "what", "align": "left"},
    {"label": "kind", "align": "left"},
    {"label": "size", "align": "right"},
    {"label": "entries", "align": "right"},
    {"label": "hidden by", "align": "right"},
]


def _open(image: Any) -> Any:
    if isinstance(image, (str, os.PathLike)):
        from .._image import open_image

        return open_image(image)
    return image


class LayerExplorer(ChartBox):
    """Browse an image the way dive does, in a notebook.

    The explorer shows a layer list with each layer's instruction, size and
    waste, and the file tree of the selected layer: either its own changes or
    everything up to it. The tree is filtered by change kind, path (glob or
    regular expression) and minimum size, and sorted by size or name.
    Selecting a path shows its history across layers. A waterfall and a
    treemap follow the selection: clicking a layer's bar selects that layer,
    and clicking a treemap box selects that path.

    Directories list their direct children when opened, with the bytes of
    the matching entries below them, and at most ``max_children`` children
    and ``max_rows`` lines are drawn, so the explorer stays quick on images
    of 100,000 files.

    Args:
        image: an :class:`~layerlab.Image`, or a reference to open.
        layer: the layer selected first; the last one by default.
        mode: ``layer`` (the selected layer's changes) or ``aggregate``
            (everything up to it).
        max_rows: lines of the file tree drawn at most.
        max_children: children listed per directory before a ``more`` line.
        treemap_nodes: boxes of the treemap at most.
        charts: draw the waterfall and the treemap.
    """

    def __init__(
        self,
        image: Any,
        *,
        layer: int | None = None,
        mode: str = "layer",
        max_rows: int = 1000,
        max_children: int = 200,
        treemap_nodes: int = 400,
        charts: bool = True,
    ) -> None:
        if mode not in MODES:
            raise OptionError(f"invalid mode {mode!r}: expected one of {MODES}")
        for name, value in (("max_rows", max_rows), ("max_children", max_children)):
            if value < 1:
                raise OptionError(f"{name} must be at least 1, not {value}")
        self.image = _open(image)
        count = len(self.image.layers)
        if count == 0:
            raise OptionError(f"{self.image.reference} has no layers to explore")
        self.max_rows = max_rows
        self.max_children = max_children
        self.treemap_nodes = treemap_nodes
        self.timings: dict[str, float] = {}
        self._index = FileIndex(self.image.files, count)
        self._expanded: set[str] = set()
        self._limits: dict[str, int] = {}
        self._layer = count - 1 if layer is None else int(layer)
        self._views: dict[tuple[Any, ...], TreeView] = {}
        self._treemap_key: tuple[Any, ...] | None = None
        self._treemaps: dict[tuple[Any, ...], Any] = {}
        self._filters = Filters()
        self._view: TreeView | None = None
        self.tree_rows = pd.DataFrame()
        self.history = pd.DataFrame()
        self._history_path = ""
        self._holding = False

        self._build_controls(mode)
        self._build_tables()
        self.charts = self._build_charts() if charts else None
        super().__init__(children=self._layout())
        self.add_class("ll-widget")
        self.select_layer(self._layer)

    # Building the parts.

    def _build_controls(self, mode: str) -> None:
        self.title = widgets.HTML(self._title_html())
        self.mode_buttons = widgets.ToggleButtons(
            options=[(_MODE_LABELS[name], name) for name in MODES],
            value=mode,
            tooltips=[
                "entries of the selected layer's tar, and the paths it removed",
                "the filesystem after the selected layer, with the paths removed so far",
            ],
            style={"button_width": "auto"},
        )
        self.change_buttons = {
            name: widgets.ToggleButton(
                value=True,
                description=name,
                tooltip=f"show {name} entries",
                layout=widgets.Layout(width="auto"),
            )
            for name in VIEW_CHANGES
        }
        self.pattern_text = widgets.Text(
            placeholder="path filter, e.g. *.so or usr/lib/** (Enter)",
            continuous_update=False,
            layout=widgets.Layout(width="22em"),
        )
        self.syntax_buttons = widgets.ToggleButtons(
            options=["glob", "regex"], value="glob", style={"button_width": "4.5em"}
        )
        self.min_size_text = widgets.Text(
            placeholder="min size, e.g. 10k",
            continuous_update=False,
            layout=widgets.Layout(width="10em"),
        )
        self.sort_dropdown = widgets.Dropdown(
            options=[("largest first", "size"), ("by name", "name")],
            value="size",
            layout=widgets.Layout(width="9em"),
        )
        self.status = widgets.HTML()
        self.mode_buttons.observe(self._on_filters, "value")
        for control in (
            *self.change_buttons.values(),
            self.pattern_text,
            self.syntax_buttons,
            self.min_size_text,
        ):
            control.observe(self._on_filters, "value")
        self.sort_dropdown.observe(self._on_sort, "value")

    def _build_tables(self) -> None:
        self.layer_table = RowTable(
            columns=_LAYER_COLUMNS, rows=self._layer_rows(), watch_charts=True
        )
        self.layer_table.add_class("ll-layers")
        self.layer_table.on_event("chart-drawn", lambda _key: self._fit_charts())
        self.layer_table.observe(self._on_layer_row, "selected")
        self.tree_table = RowTable(columns=_TREE_COLUMNS)
        self.tree_table.add_class("ll-tree")
        self.tree_table.observe(self._on_tree_row, "selected")
        self.tree_table.on_event("toggle", self.toggle)
        self.tree_table.on_event("more", self._show_more)
        self.history_title = widgets.HTML("<b>Path history</b>: select a path")
        self.history_table = RowTable(columns=_HISTORY_COLUMNS)
        self.history_table.add_class("ll-history")

    def _build_charts(self) -> go.FigureWidget:
        # One FigureWidget for both charts: each FigureWidget sends plotly.js
        # (about 5 MB) to the browser as its module, so two would send it twice.
        waterfall = plot.waterfall(self.image, label_width=32)
        steps = plot.build_steps(self.image.layers, self.image.history)
        made = steps[steps["layer"] >= 0].reset_index(drop=True)
        self._bar_layers = made["layer"].astype(int).tolist()
        self._layer_positions = dict(zip(made["layer"].astype(int), made["position"]))

        figure = make_subplots(
            rows=1,
            cols=2,
            column_widths=[0.42, 0.58],
            horizontal_spacing=0.03,
            specs=[[{"type": "xy"}, {"type": "domain"}]],
        )
        for trace in waterfall.data:
            figure.add_trace(trace, row=1, col=1)
        figure.add_trace(go.Treemap(), row=1, col=2)
        figure.update_layout(
            template=plot.TEMPLATE,
            barmode="overlay",
            height=max(420, min(640, int(waterfall.layout.height or 0))),
            margin={"t": 60, "l": 10, "r": 10, "b": 40},
            legend={**plot.TOP_LEGEND, "font": {"size": 10}},
            xaxis=waterfall.layout.xaxis.to_plotly_json(),
            yaxis=waterfall.layout.yaxis.to_plotly_json(),
        )
        widget = self._chart_widget(figure)
        self._treemap_trace = len(widget.data) - 1
        for trace in widget.data[:2]:
            trace.on_click(self._on_bar_click)
        widget.data[self._treemap_trace].on_click(self._on_treemap_click)
        return widget

    def _layout(self) -> list[widgets.Widget]:
        filters = filter_row(
            *self.change_buttons.values(),
            self.pattern_text,
            self.syntax_buttons,
            self.min_size_text,
            self.sort_dropdown,
        )
        history = widgets.VBox(
            [self.history_title, self.history_table],
            layout=widgets.Layout(flex="2 1 0", min_width="22em", overflow="auto"),
        )
        tree = widgets.VBox(
            [self.tree_table],
            layout=widgets.Layout(flex="3 1 0", min_width="26em", overflow="auto"),
        )
        parts = [
            self.title,
            self.layer_table,
            self.mode_buttons,
            filters,
            self.status,
            widgets.HBox([tree, history], layout=widgets.Layout(flex_flow="row wrap")),
        ]
        if self.charts is not None:
            parts.append(self.charts)
        return parts

    # Public controls.

    @property
    def layer(self) -> int:
        """The selected layer."""
        return self._layer

    @property
    def mode(self) -> str:
        """``layer`` or ``aggregate``; setting it redraws the tree."""
        return str(self.mode_buttons.value)

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise OptionError(f"invalid mode {value!r}: expected one of {MODES}")
        self.mode_buttons.value = value

    @property
    def filters(self) -> Filters:
        """The filters in force."""
        return self._filters

    def set_filters(
        self,
        *,
        changes: Any = None,
        pattern: str | None = None,
        regex: bool | None = None,
        min_size: int | str | None = None,
        sort: str | None = None,
    ) -> None:
        """Set filter controls as a person would; None leaves one as it is.

        ``min_size`` is bytes or text such as ``10k``. The view is redrawn
        once, after every control is set.
        """
        self._holding = True
        try:
            self._set_controls(changes, pattern, regex, min_size, sort)
        finally:
            self._holding = False
        self._refresh()

    def _set_controls(
        self,
        changes: Any,
        pattern: str | None,
        regex: bool | None,
        min_size: int | str | None,
        sort: str | None,
    ) -> None:
        if changes is not None:
            unknown = set(changes) - set(VIEW_CHANGES)
            if unknown:
                raise OptionError(
                    f"invalid change kinds {sorted(unknown)}: expected {VIEW_CHANGES}"
                )
        if sort is not None and sort not in SORTS:
            raise OptionError(f"invalid sort {sort!r}: expected one of {SORTS}")
        if changes is not None:
            for name, button in self.change_buttons.items():
                button.value = name in changes
        if pattern is not None:
            self.pattern_text.value = pattern
        if regex is not None:
            self.syntax_buttons.value = "regex" if regex else "glob"
        if min_size is not None:
            self.min_size_text.value = str(min_size)
        if sort is not None:
            self.sort_dropdown.value = sort

    def select_layer(self, layer: int) -> None:
        """Select ``layer`` and redraw what depends on it."""
        count = len(self.image.layers)
        if not 0 <= int(layer) < count:
            raise OptionError(
                f"layer {layer} is out of range: {self.image.reference} has "
                f"{count} layers"
            )
        self._layer = int(layer)
        self.layer_table.selected = str(self._layer)
        self._mark_waterfall()
        self._refresh()

    def expand(self, path: str) -> None:
        """Open directory ``path`` (and its parents) in the tree."""
        path = path.strip("/")
        while path:
            self._expanded.add(path)
            path = path.rpartition("/")[0]
        self._draw_tree()

    def collapse(self, path: str) -> None:
        """Close directory ``path`` in the tree."""
        self._expanded.discard(path.strip("/"))
        self._draw_tree()

    def toggle(self, path: str) -> None:
        """Open directory ``path`` if it is closed, close it if it is open."""
        if path.strip("/") in self._expanded:
            self.collapse(path)
        else:
            self.expand(path)

    def select_path(self, path: str) -> None:
        """Show the history of ``path`` across layers."""
        path = path.strip("/")
        started = time.perf_counter()
        self._history_path = path
        self.tree_table.selected = path
        self.history = path_history(self.image, path, index=self._index)
        self.history_title.value = (
            f"<b>Path history</b> of <code>/{html_text(path)}</code>: "
            f"{len(self.history)} {'row' if len(self.history) == 1 else 'rows'}"
        )
        self.history_table.set_rows(self._history_rows())
        self.timings["select_path"] = time.perf_counter() - started

    def view_table(self) -> pd.DataFrame:
        """Return every entry the tree shows now, expanded or not."""
        return self._current_view().frame()

    # Events.

    def _on_layer_row(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if key and key != str(self._layer):
            self.select_layer(int(key))

    def _on_tree_row(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if key and not key.startswith(MORE_PREFIX) and key != self._history_path:
            self.select_path(key)

    def _on_bar_click(self, _trace: Any, points: Any, _state: Any) -> None:
        if points.point_inds:
            self.select_layer(self._bar_layers[points.point_inds[0]])

    def _on_treemap_click(self, trace: Any, points: Any, _state: Any) -> None:
        if not points.point_inds:
            return
        node = str(trace.ids[points.point_inds[0]])
        path = node.split("//")[0].strip("/")
        if path:
            self.expand(path.rpartition("/")[0])
            self.select_path(path)

    def _on_filters(self, _change: Any = None) -> None:
        if not self._holding:
            self._refresh()

    def _on_sort(self, _change: Any = None) -> None:
        if not self._holding:
            self._draw_tree()

    def _show_more(self, key: str) -> None:
        directory = key.removeprefix(MORE_PREFIX)
        current = self._limits.get(directory, self.max_children)
        self._limits[directory] = current + self.max_children
        self._draw_tree()

    # Drawing.

    def _read_filters(self) -> Filters:
        changes = frozenset(
            name for name, button in self.change_buttons.items() if button.value
        )
        filters = Filters(
            changes=changes,
            pattern=self.pattern_text.value,
            regex=self.syntax_buttons.value == "regex",
            min_size=parse_size(self.min_size_text.value),
        )
        self._index.matches(filters.pattern, regex=filters.regex)
        return filters

    def _current_view(self) -> TreeView:
        key = (self._layer, self.mode, self._filters)
        view = self._views.get(key)
        if view is None:
            # Keep a few recent views so that stepping back is instant.
            if len(self._views) >= 8:
                self._views.pop(next(iter(self._views)))
            view = TreeView(
                self._index, layer=self._layer, mode=self.mode, filters=self._filters
            )
            self._views[key] = view
        return view

    def _refresh(self) -> None:
        started = time.perf_counter()
        try:
            self._filters = self._read_filters()
        except OptionError as error:
            self._error = str(error)
        else:
            self._error = ""
        self._view = self._current_view()
        self._draw_tree()
        self._draw_treemap()
        self.timings["refresh"] = time.perf_counter() - started

    def _draw_tree(self) -> None:
        if self._view is None:
            return
        started = time.perf_counter()
        self.tree_rows = self._view.tree(
            self._expanded,
            sort=self.sort_dropdown.value,
            max_children=self.max_children,
            max_rows=self.max_rows,
            limits=self._limits,
        )
        self.tree_table.set_rows(_tree_table_rows(self.tree_rows))
        self.status.value = self._status_html()
        self.timings["tree"] = time.perf_counter() - started

    def _draw_treemap(self) -> None:
        if self.charts is None or self._view is None:
            return
        key = (self._layer, self.mode, self._filters)
        if key == self._treemap_key:
            return
        started = time.perf_counter()
        trace = self._treemaps.get(key)
        if trace is None:
            source = SimpleNamespace(
                filesystem=self._view.frame(), layers=self.image.layers
            )
            figure = plot.treemap(source, max_nodes=self.treemap_nodes)
            trace = figure.data[0]
            if len(self._treemaps) >= 8:
                self._treemaps.pop(next(iter(self._treemaps)))
            self._treemaps[key] = trace
        with self.charts.batch_update():
            self.charts.data[self._treemap_trace].update(
                ids=trace.ids,
                parents=trace.parents,
                labels=trace.labels,
                values=trace.values,
                text=trace.text,
                textinfo=trace.textinfo,
                hovertext=trace.hovertext,
                hoverinfo=trace.hoverinfo,
                branchvalues=trace.branchvalues,
                marker={"colors": trace.marker.colors},
                sort=True,
            )
            self.charts.layout.title = {
                "text": html_text(self._view_label(self._view)),
                "x": 0.99,
                "xanchor": "right",
                "font": {"size": 13},
            }
        self._treemap_key = key
        self.timings["treemap"] = time.perf_counter() - started

    def _mark_waterfall(self) -> None:
        if self.charts is None:
            return
        position = self._layer_positions.get(self._layer)
        if position is None:
            return
        self.charts.layout.shapes = [
            {
                "type": "rect",
                "xref": "x domain",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": position - 0.5,
                "y1": position + 0.5,
                "fillcolor": "rgba(255, 200, 0, 0.25)",
                "line": {"width": 0},
                "layer": "below",
            }
        ]

    # Text.

    def _title_html(self) -> str:
        image = self.image
        metrics = image.metrics
        return (
            f"<b>{html_text(image.reference)}</b>: {len(image.layers)} layers, "
            f"{human_bytes(metrics.content_bytes)} stored, "
            f"{human_bytes(metrics.reclaimable_bytes)} reclaimable, "
            f"dive efficiency {metrics.efficiency:.2%}"
        )

    def _view_label(self, view: TreeView) -> str:
        what = "changes" if self.mode == "layer" else "filesystem up to it"
        count = view.total_entries
        noun = "entry" if count == 1 else "entries"
        return (
            f"layer {self._layer}, {what}: {count:,} {noun}, "
            f"{human_bytes(view.total_bytes)}"
        )

    def _status_html(self) -> str:
        view = self._view
        assert view is not None
        text = html_text(self._view_label(view))
        lines = len(self.tree_rows)
        if lines >= self.max_rows:
            text += f"; showing the first {lines:,} lines"
        if self._error:
            text += f' <span style="color:#c62828">{html_text(self._error)}</span>'
        return text

    def _layer_rows(self) -> list[list[Any]]:
        rows = []
        for row in self.image.layers.itertuples():
            command = short_command(_text(row.created_by), _text(row.instruction))
            rows.append(
                [
                    str(int(row.layer)),
                    0,
                    0,
                    "ll-layer",
                    plot.layer_color(int(row.layer)),
                    str(int(row.layer)),
                    command,
                    human_bytes(int(row.content_size)),
                    human_bytes(int(row.hidden_bytes)) if row.hidden_bytes else "",
                    f"{int(row.added):,}",
                    f"{int(row.modified):,}",
                    f"{int(row.deleted):,}",
                ]
            )
        return rows

    def _history_rows(self) -> list[list[Any]]:
        rows = []
        for number, row in enumerate(self.history.itertuples()):
            hidden = "" if row.hidden_by < 0 else str(row.hidden_by)
            rows.append(
                [
                    str(number),
                    0,
                    0,
                    "ll-" + _history_class(row.what),
                    plot.layer_color(int(row.layer)),
                    str(row.layer),
                    row.what,
                    row.kind,
                    human_bytes(int(row.size)),
                    f"{int(row.entries):,}" if row.entries else "",
                    hidden,
                ]
            )
        return rows

    def static_html(self) -> str:
        """Return a static HTML view: the summary, a waterfall, the drawn tree."""
        return explorer_html(self.image, self.tree_rows, label=self._status_text())

    def _status_text(self) -> str:
        return self._view_label(self._view) if self._view is not None else ""


def _tree_table_rows(tree: pd.DataFrame) -> list[list[Any]]:
    rows = []
    for row in tree.itertuples(index=False):
        if row.kind == "more":
            rows.append(
                [
                    MORE_PREFIX + row.path,
                    int(row.depth),
                    0,
                    "ll-more",
                    "",
                    row.name,
                    "",
                    human_bytes(int(row.size)),
                    "",
                    "",
                ]
            )
            continue
        is_dir = row.kind == "dir" or row.entries > 0
        toggle = 0
        if is_dir:
            toggle = 2 if row.expanded else 1
        name = row.name + ("/" if is_dir else "")
        if row.kind == "symlink":
            name += " →"
        rows.append(
            [
                row.path,
                int(row.depth),
                toggle,
                f"ll-{row.change or 'dir'}",
                "",
                name,
                row.change,
                human_bytes(int(row.size)),
                f"{int(row.entries):,}" if is_dir else "",
                "" if row.layer < 0 else str(int(row.layer)),
            ]
        )
    return rows


def _history_class(what: str) -> str:
    if what in ("added", "modified", "unchanged"):
        return what
    if what in ("deleted", "hid below"):
        return "removed"
    return "dir"


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)
