"""layerlab: container images as pandas DataFrames of files per layer.

Start with :func:`open_image`; its result carries the ``layers``, ``files``,
``filesystem``, ``waste`` and ``history`` tables and the image's metrics.
"""

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

__version__ = "0.1.0"

__all__ = [
    "CIResult",
    "CIRules",
    "DiveMetrics",
    "DigestMismatchError",
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
    "__version__",
    "columns",
    "dive_metrics",
    "evaluate_ci",
    "load_ci_rules",
    "open_image",
]
