"""layerlab: container images as pandas DataFrames of files per layer.

Start with :func:`open_image`; its result carries the ``layers``, ``files``,
``filesystem``, ``waste`` and ``history`` tables and the image's metrics.
Plots live in :mod:`layerlab.plot`, notebook widgets in
:mod:`layerlab.widgets` and the teaching scenarios in
:mod:`layerlab.scenarios`; they load on first use, so the command line and
plain table work do not pay for plotly and ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _schema as columns
from ._ci import CIResult, CIRules, evaluate_ci, load_ci_rules
from ._dive import DiveMetrics, dive_metrics
from ._errors import (
    DigestMismatchError,
    EngineError,
    InvalidEntryError,
    InvalidImageError,
    InvalidReferenceError,
    LayerError,
    LayerlabError,
    OptionError,
    PlatformNotFoundError,
    ReferenceNotFoundError,
)
from ._image import Image, open_image
from ._metrics import Metrics
from ._samples import list_samples, sample_path

__version__ = "0.1.0"

# Public names that load their module on first use: name -> (module, attribute).
_LAZY = {
    "plot": ("layerlab.plot", None),
    "widgets": ("layerlab.widgets", None),
    "scenarios": ("layerlab.scenarios", None),
    "report": ("layerlab._report", "report"),
    "render_report": ("layerlab._report", "render_report"),
    "squash": ("layerlab._squash", "squash"),
    "predict_squash": ("layerlab._squash", "predict_squash"),
    "SquashResult": ("layerlab._squash", "SquashResult"),
    "simulate_combine": ("layerlab._squash", "simulate_combine"),
    "compare": ("layerlab._compare", "compare"),
    "Comparison": ("layerlab._compare", "Comparison"),
    "pull_cost": ("layerlab._pull", "pull_cost"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'layerlab' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


__all__ = [
    "CIResult",
    "CIRules",
    "Comparison",
    "DigestMismatchError",
    "DiveMetrics",
    "EngineError",
    "Image",
    "InvalidEntryError",
    "InvalidImageError",
    "InvalidReferenceError",
    "LayerError",
    "LayerlabError",
    "Metrics",
    "OptionError",
    "PlatformNotFoundError",
    "ReferenceNotFoundError",
    "SquashResult",
    "__version__",
    "columns",
    "compare",
    "dive_metrics",
    "evaluate_ci",
    "list_samples",
    "load_ci_rules",
    "open_image",
    "plot",
    "predict_squash",
    "pull_cost",
    "render_report",
    "report",
    "sample_path",
    "scenarios",
    "simulate_combine",
    "squash",
    "widgets",
]
