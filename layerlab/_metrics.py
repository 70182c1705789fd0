"""The two families of metrics, kept apart and labelled.

dive's family (efficiency, inefficient bytes, user-wasted percent) is
computed exactly as dive 0.13 does, so the numbers equal ``dive --json``;
layerlab's exact family counts the bytes that no one can see in the final
filesystem, which is what squashing every layer saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def compute_metrics(image: Image) -> Metrics:
    """Compute both families of metrics for ``image``."""
    from ._dive import dive_metrics

    files = image.files
    wasted = files[files["waste_reason"].notna()]
    by_reason = wasted.groupby("waste_reason", observed=False)["size"].sum()
    entries = [image.entries(index) for index in range(len(image.layers))]
    return Metrics(
        dive=dive_metrics(entries),
        reclaimable_bytes=int(wasted["size"].sum()),
        wasted_by_reason={
            reason: int(by_reason.get(reason, 0)) for reason in _schema.WASTE_REASONS
        },
        content_bytes=int(files["size"].sum()),
        final_bytes=int(files["size"].sum()) - int(wasted["size"].sum()),
    )
