"""The base class and layout helper of the explorer and the comparison view."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from .._format import OFFLINE_CONFIG


class ChartBox(widgets.VBox):  # type: ignore[misc]
    """A vertical box with plotly charts and a static HTML fallback.

    Subclasses set ``charts`` (None when drawn without charts) and define
    ``static_html()``.
    """

    charts: go.FigureWidget | None = None
    _fits = 0

    def static_html(self) -> str:
        """Return the view as HTML with no script."""
        raise NotImplementedError

    def _chart_widget(self, figure: go.Figure) -> go.FigureWidget:
        widget = go.FigureWidget(figure)
        widget.layout.autosize = True
        # No "Share chart" button: it would send the image's paths to plotly's
        # cloud.
        widget._config = {**widget._config, **OFFLINE_CONFIG}
        return widget

    def _fit_charts(self) -> None:
        # Any relayout makes plotly read its container's width again; meta is
        # a layout field that nothing else reads.
        if self.charts is not None:
            self._fits += 1
            self.charts.layout.meta = {"fitted": self._fits}

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Where no widget frontend runs (an HTML export of a notebook saved
        # without widget state, a plain viewer), the static HTML shows.
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/html"] = self.static_html()
        return bundle


def filter_row(*controls: widgets.Widget) -> widgets.HBox:
    """Return a wrapping row of filter controls, headed "show"."""
    return widgets.HBox(
        [widgets.Label("show"), *controls],
        layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
    )
