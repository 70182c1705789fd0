"""Notebook widgets: a layer explorer in the spirit of dive, and a comparison view.

Both are ipywidgets containers with plotly ``FigureWidget`` charts, so they
need the ``notebook`` extra (ipywidgets, anywidget). Each also gives a static
HTML view (``static_html()``), which is what nbconvert's HTML export shows
when the notebook was saved without widget state. JupyterLab saves none by
default, but ``jupyter nbconvert --execute`` and nbclient store it unless
``store_widget_state`` is False, and the export then loads the widgets'
JavaScript from a CDN (about 5 MB of plotly.js per chart widget) in place of
the static view.
"""

from __future__ import annotations

try:
    import anywidget  # noqa: F401
    import ipywidgets  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"layerlab.widgets needs ipywidgets and anywidget ({error}); "
        "install them with: pip install 'layerlab[notebook]'"
    ) from None

from ._compare_view import CompareView
from ._explorer import LayerExplorer
from ._tree import MODES, VIEW_CHANGES

__all__ = ["MODES", "VIEW_CHANGES", "CompareView", "LayerExplorer"]
