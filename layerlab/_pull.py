"""Estimate how long pulling an image takes, layered or squashed.

The model is an estimate, not a measurement. A pull downloads up to
``parallel`` layers at once (the Docker Engine's default is 3). Each
download runs at most at ``per_connection`` bytes per second, and all of
them together share ``bandwidth``. Layers are extracted one after another in
order, each once it is downloaded and the layer below it is extracted, at
``extract_rate`` uncompressed bytes per second. Layers already present (a
cached base image) are neither downloaded nor extracted.

This is why squashing can slow a pull down: one large layer cannot use more
than one connection, and it shares no bytes with images already present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ._errors import OptionError

DEFAULT_PARALLEL = 3


def pull_seconds(
    layers: Sequence[tuple[int, int]],
    *,
    bandwidth: float,
    parallel: int = DEFAULT_PARALLEL,
    per_connection: float | None = None,
    extract_rate: float | None = None,
) -> tuple[float, float]:
    """Return (download seconds, total seconds) for ``layers`` to pull.

    ``layers`` are (compressed bytes, uncompressed bytes) in layer order.
    ``per_connection`` defaults to ``bandwidth / parallel``; ``extract_rate``
    defaults to no extraction cost.
    """
    if bandwidth <= 0 or parallel < 1:
        raise OptionError("bandwidth must be positive and parallel at least 1")
    cap = per_connection or bandwidth / parallel
    finished = _download_times([size for size, _ in layers], bandwidth, parallel, cap)
    download = max(finished, default=0.0)
    if not extract_rate:
        return download, download
    ready = 0.0
    for done, (_, uncompressed) in zip(finished, layers):
        ready = max(ready, done) + uncompressed / extract_rate
    return download, ready


def _download_times(
    sizes: list[int], bandwidth: float, parallel: int, cap: float
) -> list[float]:
    remaining = {index: float(size) for index, size in enumerate(sizes)}
    waiting = list(range(len(sizes)))
    active: list[int] = []
    finished = [0.0] * len(sizes)
    now = 0.0
    while waiting or active:
        while waiting and len(active) < parallel:
            active.append(waiting.pop(0))
        rate = min(cap, bandwidth / len(active))
        step = min(remaining[index] for index in active) / rate
        now += step
        for index in list(active):
            remaining[index] -= step * rate
            if remaining[index] <= 1e-6:
                finished[index] = now
                active.remove(index)
    return finished


def pull_cost(
    images: Sequence[Any],
    *,
    bandwidth: float,
    parallel: int = DEFAULT_PARALLEL,
    per_connection: float | None = None,
    extract_rate: float | None = None,
    cached: Any = None,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Estimate each image's pull time, cold and with ``cached``'s layers present.

    ``images`` are Image objects (layered and squashed variants, say);
    ``cached`` is an image whose layers are already present for the warm
    estimate (a base image, or the previous release), matched by diff_id.
    """
    present = set() if cached is None else set(cached.layers["diff_id"].astype(str))
    names = (
        list(labels) if labels is not None else [image.reference for image in images]
    )
    rows = []
    for name, image in zip(names, images):
        layers = image.layers
        for state, skip in (("cold", set()), ("cached", present)):
            wanted = layers[~layers["diff_id"].astype(str).isin(skip)]
            pairs = list(
                zip(
                    wanted["compressed_size"].astype(int),
                    wanted["uncompressed_size"].astype(int),
                )
            )
            download, total = pull_seconds(
                pairs,
                bandwidth=bandwidth,
                parallel=parallel,
                per_connection=per_connection,
                extract_rate=extract_rate,
            )
            rows.append(
                {
                    "image": name,
                    "state": state,
                    "layers": len(pairs),
                    "bytes": int(sum(size for size, _ in pairs)),
                    "download_seconds": download,
                    "total_seconds": total,
                }
            )
    return pd.DataFrame(rows)


def pull_chart(costs: pd.DataFrame) -> Any:
    """Return a grouped bar chart of estimated pull seconds per image."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for state in ("cold", "cached"):
        part = costs[costs["state"] == state]
        figure.add_bar(
            name="nothing cached" if state == "cold" else "cached layers present",
            x=part["image"],
            y=part["total_seconds"],
            customdata=part[["layers", "bytes"]],
            hovertemplate="%{x}<br>%{y:.1f} s<br>%{customdata[0]} layers, "
            "%{customdata[1]:,} bytes<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        yaxis_title="estimated pull seconds",
        title="Estimated pull time",
    )
    return figure
