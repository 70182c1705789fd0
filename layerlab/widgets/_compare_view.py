"""``CompareView``: two or more images side by side, and the files between two."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import plot
from .._compare import (
    DIFF_CHANGES,
    Comparison,
    compare,
    counted_diff_sizes,
    filesystem_diff,
    largest_change_first,
)
from .._errors import OptionError
from .._format import html_text, human_bytes
from ._base import ChartBox, filter_row
from ._diff import directory_deltas, select_diff
from ._static import compare_html
from ._table import RowTable

_FILE_COLUMNS = [
    {"label": "path", "align": "left"},
    {"label": "change", "align": "left"},
    {"label": "before", "align": "right"},
    {"label": "after", "align": "right"},
    {"label": "change in size", "align": "right"},
]
ALL_DIRECTORIES = ""
# Bars of the size chart: label, column of Comparison.summary, colour.
_SIZE_SERIES = (
    ("all layers", "content_bytes", "#4c78a8"),
    ("final filesystem", "final_bytes", "#54a24b"),
    ("reclaimable", "reclaimable_bytes", plot.REASON_COLORS["deleted"]),
    ("compressed", "compressed_bytes", "#f58518"),
)


class CompareView(ChartBox):
    """Compare images: sizes side by side, and the file diff of two of them.

    The numbers come from :func:`layerlab.compare`. The chart on the left
    shows each image's stored, final, reclaimable and
    compressed bytes. The chart on the right shows the size change per
    directory between the two selected images, and clicking a bar opens that
    directory. The file list has every path that differs, largest change
    first, filterable by directory and change kind.

    Args:
        images: two to ten :class:`~layerlab.Image` objects or references;
            the first is the baseline ``layerlab.compare`` measures against.
        names: a unique label per image; short names from the references by
            default.
        max_rows: lines of the file list drawn at most.
        charts: draw the charts.
    """

    def __init__(
        self,
        images: Sequence[Any],
        *,
        names: Sequence[str] | None = None,
        max_rows: int = 500,
        charts: bool = True,
    ) -> None:
        if isinstance(images, (str, os.PathLike)) or len(images) < 2:
            raise OptionError("CompareView needs at least two images")
        self.comparison: Comparison = compare(*images, labels=names)
        self.images = self.comparison.images
        self.names = self.comparison.labels
        self.max_rows = max_rows
        self.timings: dict[str, float] = {}
        self._diffs: dict[tuple[int, int], pd.DataFrame] = {}
        self._counted: dict[tuple[int, int], pd.DataFrame] = {}
        self.rows = pd.DataFrame()
        self._holding = False
        self._build_controls()
        self.file_table = RowTable(columns=_FILE_COLUMNS, watch_charts=True)
        self.file_table.add_class("ll-diff")
        self.file_table.on_event("chart-drawn", lambda _key: self._fit_charts())
        self.charts = self._build_charts() if charts else None
        super().__init__(children=self._layout())
        self.add_class("ll-widget")
        self._on_pair()

    def _build_controls(self) -> None:
        options = [(f"{index}: {name}", index) for index, name in enumerate(self.names)]
        self.before_dropdown = widgets.Dropdown(
            options=options, value=0, description="before"
        )
        self.after_dropdown = widgets.Dropdown(
            options=options, value=len(self.images) - 1, description="after"
        )
        self.change_buttons = {
            name: widgets.ToggleButton(
                value=name != "unchanged",
                description=name,
                tooltip=f"show {name} paths",
                layout=widgets.Layout(width="auto"),
            )
            for name in DIFF_CHANGES
        }
        self.directory_dropdown = widgets.Dropdown(
            options=[("all directories", ALL_DIRECTORIES)],
            value=ALL_DIRECTORIES,
            description="directory",
        )
        self.status = widgets.HTML()
        self.before_dropdown.observe(self._on_pair, "value")
        self.after_dropdown.observe(self._on_pair, "value")
        self.directory_dropdown.observe(self._on_filters, "value")
        for button in self.change_buttons.values():
            button.observe(self._on_filters, "value")

    def _build_charts(self) -> go.FigureWidget:
        # One FigureWidget for both charts, because each one sends plotly.js
        # (about 5 MB) to the browser as its module.
        figure = make_subplots(
            rows=1,
            cols=2,
            column_widths=[0.45, 0.55],
            horizontal_spacing=0.12,
            subplot_titles=("image sizes", "size change per directory"),
        )

        labels = [_short(name) for name in self.names]
        summary = self.comparison.summary
        for name, key, color in _SIZE_SERIES:
            figure.add_trace(
                go.Bar(
                    name=name,
                    orientation="h",
                    y=labels,
                    x=summary[key].tolist(),
                    marker={"color": color},
                    hovertemplate="%{y}: %{x:.4~s}B<extra>" + name + "</extra>",
                ),
                row=1,
                col=1,
            )
        figure.add_trace(
            go.Bar(name="change", orientation="h", showlegend=False), row=1, col=2
        )

        figure.update_layout(
            template=plot.TEMPLATE,
            barmode="group",
            height=max(320, 120 + 70 * len(self.images)),
            margin={"t": 70, "l": 10, "r": 10, "b": 40},
            legend={**plot.TOP_LEGEND, "y": 1.12},
        )
        figure.update_xaxes(**plot.BYTE_AXIS)
        figure.update_yaxes(autorange="reversed", automargin=True)
        widget = self._chart_widget(figure)
        self._delta_trace = len(widget.data) - 1
        widget.data[self._delta_trace].on_click(self._on_directory_click)
        return widget

    def _layout(self) -> list[widgets.Widget]:
        filters = filter_row(*self.change_buttons.values(), self.directory_dropdown)
        parts: list[widgets.Widget] = [
            widgets.HBox([self.before_dropdown, self.after_dropdown]),
        ]
        if self.charts is not None:
            parts.append(self.charts)
        parts += [filters, self.status, self.file_table]
        return parts

    # Public controls.

    @property
    def pair(self) -> tuple[int, int]:
        """Indexes of the images compared file by file: (before, after)."""
        return int(self.before_dropdown.value), int(self.after_dropdown.value)

    def diff(self, before: int | None = None, after: int | None = None) -> pd.DataFrame:
        """Return the file diff between two images (the selected pair by default)."""
        pair = (
            self.pair[0] if before is None else before,
            self.pair[1] if after is None else after,
        )
        if pair not in self._diffs:
            if pair[0] == 0 and pair[1] > 0:
                self._diffs[pair] = self.comparison.diffs[self.names[pair[1]]]
            else:
                first, second = (self.images[index] for index in pair)
                self._diffs[pair] = filesystem_diff(first.filesystem, second.filesystem)
        return self._diffs[pair]

    def _counted_diff(self) -> pd.DataFrame:
        # The chart and the net change count hardlinked content once, as
        # Comparison.directories does. The file list keeps each path's size.
        pair = self.pair
        if pair not in self._counted:
            first, second = (self.images[index].filesystem for index in pair)
            self._counted[pair] = counted_diff_sizes(self.diff(), first, second)
        return self._counted[pair]

    def set_filters(self, *, changes: Any = None, directory: str | None = None) -> None:
        """Set the change kinds and the directory shown; None leaves one as it is.

        The view is redrawn once, after both are set.
        """
        if changes is not None:
            unknown = set(changes) - set(DIFF_CHANGES)
            if unknown:
                raise OptionError(
                    f"invalid change kinds {sorted(unknown)}: expected {DIFF_CHANGES}"
                )
        self._holding = True
        try:
            if changes is not None:
                for name, button in self.change_buttons.items():
                    button.value = name in changes
            if directory is not None:
                self._set_directory(directory.strip("/"))
        finally:
            self._holding = False
        self._draw()

    def _set_directory(self, directory: str) -> None:
        values = [value for _label, value in self.directory_dropdown.options]
        if directory not in values:
            self.directory_dropdown.options = [
                *self.directory_dropdown.options,
                (f"/{directory}", directory),
            ]
        self.directory_dropdown.value = directory

    # Events and drawing.

    def _on_pair(self, _change: Any = None) -> None:
        started = time.perf_counter()
        diff = self.diff()
        directories = sorted(
            {
                "/".join(path.split("/")[:depth])
                for path in diff["path"].astype(str)
                for depth in (1, 2)
                if path.count("/") >= depth
            }
        )
        with self.directory_dropdown.hold_trait_notifications():
            self.directory_dropdown.options = [
                ("all directories", ALL_DIRECTORIES),
                *((f"/{name}", name) for name in directories),
            ]
            self.directory_dropdown.value = ALL_DIRECTORIES
        self._draw()
        self.timings["pair"] = time.perf_counter() - started

    def _on_filters(self, _change: Any = None) -> None:
        if not self._holding:
            self._draw()

    def _on_directory_click(self, trace: Any, points: Any, _state: Any) -> None:
        if points.point_inds:
            directory = str(trace.customdata[points.point_inds[0]][0])
            self._set_directory(directory)

    def _changes(self) -> list[str]:
        return [name for name, button in self.change_buttons.items() if button.value]

    def _draw(self) -> None:
        started = time.perf_counter()
        directory = str(self.directory_dropdown.value)
        diff = self.diff()
        chosen = select_diff(diff, changes=self._changes(), directory=directory)
        self.rows = largest_change_first(chosen).head(self.max_rows)
        self.file_table.set_rows(_file_rows(self.rows))
        self.status.value = self._status_html(diff, chosen)
        if self.charts is not None:
            self._draw_deltas(self._counted_diff().loc[chosen.index], directory)
        self.timings["draw"] = time.perf_counter() - started

    def _draw_deltas(self, chosen: pd.DataFrame, directory: str) -> None:
        assert self.charts is not None
        deltas = directory_deltas(chosen, directory=directory)
        labels = [html_text("/" + name) for name in deltas["directory"]]
        colors = [
            "#c62828" if change > 0 else "#2a8a2a" for change in deltas["size_change"]
        ]
        with self.charts.batch_update():
            self.charts.data[self._delta_trace].update(
                y=labels,
                x=deltas["size_change"].tolist(),
                customdata=[[name] for name in deltas["directory"]],
                marker={"color": colors},
                hovertemplate="%{y}: %{x:+.4~s}B<extra></extra>",
            )
            self.charts.layout.annotations = (
                []
                if len(deltas)
                else [
                    {
                        "text": "no change in size or paths here",
                        "showarrow": False,
                        "xref": "x2 domain",
                        "yref": "y2 domain",
                        "x": 0.5,
                        "y": 0.5,
                    }
                ]
            )

    def _status_html(self, diff: pd.DataFrame, chosen: pd.DataFrame) -> str:
        before, after = self.pair
        counts = diff["change"].value_counts()
        net = self._counted_diff()["size_change"].sum()
        layers = self._shared_layers()
        parts = [
            f"<b>{html_text(_short(self.names[before]))}</b> → "
            f"<b>{html_text(_short(self.names[after]))}</b>: "
            + ", ".join(
                f"{int(counts.get(name, 0)):,} {name}" for name in DIFF_CHANGES
            ),
            f"final size change {_signed_bytes(int(net))}",
            (
                f"{layers['shared']} layers shared "
                f"({human_bytes(layers['shared_bytes'])} compressed), "
                f"{layers['only_before']} only before, "
                f"{layers['only_after']} only after"
            ),
            f"showing {len(self.rows):,} of {len(chosen):,} paths",
        ]
        return "; ".join(parts)

    def _shared_layers(self) -> dict[str, int]:
        layers = self.comparison.layers
        before, after = (layers[self.names[index]] for index in self.pair)
        return {
            "shared": int((before & after).sum()),
            "shared_bytes": int(layers.loc[before & after, "compressed_size"].sum()),
            "only_before": int((before & ~after).sum()),
            "only_after": int((after & ~before).sum()),
        }

    def static_html(self) -> str:
        """Return a static HTML view: sizes per image and the drawn file list."""
        summary = self.comparison.summary
        sizes = pd.DataFrame(
            {
                "image": self.names,
                **{label: summary[key] for label, key, _color in _SIZE_SERIES},
            }
        )
        before, after = self.pair
        title = f"{self.names[before]} → {self.names[after]}"
        return compare_html(sizes, self.rows, title=title)


def _file_rows(rows: pd.DataFrame) -> list[list[Any]]:
    lines = []
    for row in rows.itertuples(index=False):
        lines.append(
            [
                str(row.path),
                0,
                0,
                f"ll-{_ROW_CLASSES.get(str(row.change), str(row.change))}",
                "",
                "/" + str(row.path),
                str(row.change),
                "" if pd.isna(row.kind_before) else human_bytes(int(row.size_before)),
                "" if pd.isna(row.kind_after) else human_bytes(int(row.size_after)),
                _signed_bytes(int(row.size_change)),
            ]
        )
    return lines


_ROW_CLASSES = {"metadata": "modified"}


def _signed_bytes(delta: int) -> str:
    if delta > 0:
        return "+" + human_bytes(delta)
    if delta < 0:
        return "−" + human_bytes(-delta)
    return "±0 B"


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]
