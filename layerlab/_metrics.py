"""The two families of metrics, kept apart and labelled.

dive's family (efficiency, inefficient bytes, user-wasted percent) is
computed exactly as dive 0.13 does, so the numbers equal ``dive --json``;
layerlab's exact family counts the bytes that no one can see in the final
filesystem, which is what squashing every layer saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _schema

if TYPE_CHECKING:
    from ._image import Image


@dataclass(frozen=True)
class Metrics:
    """An image's metrics.

    Attributes:
        dive: dive's figures (``size_bytes``, ``user_size_bytes``,
            ``efficiency``, ``inefficient_bytes``, ``user_wasted_percent``).
        reclaimable_bytes: content bytes stored in layers that the final
            filesystem cannot show.
        wasted_by_reason: those bytes split by reason (overwritten, deleted,
            identical, metadata).
        content_bytes: content bytes stored in all layers.
        final_bytes: bytes of regular-file content in the final filesystem,
            each hardlinked content counted once.
    """

    dive: Any
    reclaimable_bytes: int
    wasted_by_reason: dict[str, int]
    content_bytes: int
    final_bytes: int

    @property
    def size_bytes(self) -> int:
        """dive's image size: the sum of its layer sizes."""
        return int(self.dive.size_bytes)

    @property
    def efficiency(self) -> float:
        """dive's efficiency score."""
        return float(self.dive.efficiency)

    @property
    def inefficient_bytes(self) -> int:
        """dive's wasted bytes."""
        return int(self.dive.inefficient_bytes)

    @property
    def user_wasted_percent(self) -> float:
        """dive's user-wasted fraction (0.1 is 10 %)."""
        return float(self.dive.user_wasted_percent)


def compute_metrics(image: Image, *, dive: Any = None) -> Metrics:
    """Compute both families of metrics for ``image``.

    ``dive`` is dive's family when it is already known (from the cache).
    """
    from ._dive import dive_metrics

    files = image.files
    wasted = files[files["waste_reason"].notna()]
    by_reason = wasted.groupby("waste_reason", observed=False)["size"].sum()
    if dive is None:
        dive = dive_metrics([image.entries(i) for i in range(len(image.layers))])
    return Metrics(
        dive=dive,
        reclaimable_bytes=int(wasted["size"].sum()),
        wasted_by_reason={
            reason: int(by_reason.get(reason, 0)) for reason in _schema.WASTE_REASONS
        },
        content_bytes=int(files["size"].sum()),
        final_bytes=int(files["size"].sum()) - int(wasted["size"].sum()),
    )


_DIVE_FIELDS = (
    "size_bytes",
    "user_size_bytes",
    "efficiency",
    "inefficient_bytes",
    "user_wasted_percent",
)


def dive_to_cache(dive: Any) -> tuple[dict[str, Any], pd.DataFrame]:
    """Split dive's figures into JSON-ready values and the inefficiency table."""
    meta = {name: getattr(dive, name) for name in _DIVE_FIELDS}
    # JSON has no NaN or infinity, which dive's user-wasted fraction can be.
    meta["user_wasted_percent"] = repr(float(dive.user_wasted_percent))
    meta["layer_sizes"] = list(dive.layer_sizes)
    return meta, dive.inefficiencies


def dive_from_cache(cached: dict[str, Any]) -> Any:
    """Rebuild dive's figures from the image cache, or return None."""
    from ._dive import DiveMetrics

    meta = cached.get("dive")
    if meta is None:
        return None
    return DiveMetrics(
        size_bytes=int(meta["size_bytes"]),
        user_size_bytes=int(meta["user_size_bytes"]),
        efficiency=float(meta["efficiency"]),
        inefficient_bytes=int(meta["inefficient_bytes"]),
        user_wasted_percent=float(meta["user_wasted_percent"]),
        layer_sizes=tuple(int(size) for size in meta["layer_sizes"]),
        inefficiencies=cached["inefficiencies"],
    )
