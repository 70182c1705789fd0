"""Estimate how long pulling an image takes, layered or squashed.

The figures are an estimate from a model, not a measurement. The model
follows Docker Engine's layer download manager (moby
``distribution/xfer/download.go``):

- a layer already in the local store is skipped. Docker Engine keys its
  layer store by chain ID (the layer and every layer below it), so only a
  bottom run of layers shared with a present image is skipped;
- a blob listed twice in one manifest is downloaded once;
- up to ``parallel`` blobs download at a time, started in manifest order as
  slots free up (``dockerd --max-concurrent-downloads``, 3 by default in
  Docker Engine 20.10);
- a layer is decompressed and registered only after the layer below it, so
  extraction runs one layer at a time, bottom to top, while later blobs
  still download.

The link carries ``bandwidth`` bytes per second, shared equally by the
downloads in progress; one download reaches at most ``per_connection``
bytes per second. The default cap, ``bandwidth / parallel``, stands for the
per-connection limits (TCP window, CDN throttling) that make parallel
downloads worth having, and it is why one large squashed layer can download
slower than the same bytes in several layers. ``per_connection=bandwidth``
gives each download ``bandwidth / active``. ``latency`` is a delay per blob
before its bytes flow (token, redirect and request round trips). During it
the blob occupies a slot but uses no bandwidth. Extraction runs at ``extract_rate``
uncompressed bytes per second when it is given.

Left out: TCP slow start, retries, disk contention between downloads and
extraction, and the manifest and config requests.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ._errors import OptionError

DEFAULT_PARALLEL = 3
"""Docker Engine's default ``--max-concurrent-downloads`` (20.10)."""

MATCHES = ("chain_id", "diff_id", "digest")
"""Keys that recognise a layer of a cached image in the pulled one.

- ``chain_id``: the same layer on the same layers below it, as Docker
  Engine's layer store requires. The engine must also know the blob's
  digest, which it does when it pulled the cached image.
- ``diff_id``: the same uncompressed content, wherever it sits.
- ``digest``: the same blob, as containerd's content store keys blobs.
"""

SCHEDULE_COLUMNS = (
    "layer",
    "size",
    "uncompressed_size",
    "cached",
    "start",
    "transfer_start",
    "end",
    "extract_start",
    "extract_end",
)
"""Columns of :func:`schedule_pull`, one row per layer, bottom first.

Times are seconds from the start of the pull. ``start`` is when the blob
takes a download slot, ``transfer_start`` when its bytes start to flow
(after ``latency``), ``end`` when it has arrived. A cached layer, and a blob
already fetched for a lower layer, have no download times (NaN). The
extraction times are NaN for cached layers and without ``extract_rate``.
"""

COST_COLUMNS = (
    "image",
    "state",
    "layers",
    "bytes",
    "download_seconds",
    "extract_seconds",
    "total_seconds",
)
"""Columns of :func:`pull_cost`.

- ``state``: ``cold`` (nothing present) or ``cached`` (the layers of the
  ``cached`` images present).
- ``layers``, ``bytes``: blobs downloaded and their compressed bytes.
- ``download_seconds``: when the last blob has arrived.
- ``extract_seconds``: time spent extracting, summed over the layers.
- ``total_seconds``: when the last layer is extracted, or
  ``download_seconds`` without ``extract_rate``.
"""


@dataclass(frozen=True)
class PullModel:
    """The network and disk figures a pull estimate assumes.

    Attributes:
        bandwidth: bytes per second of the whole link.
        parallel: blobs downloaded at a time.
        per_connection: bytes per second one download reaches at most;
            None means ``bandwidth / parallel``.
        latency: seconds per blob before its bytes flow.
        extract_rate: uncompressed bytes per second of decompressing and
            writing a layer; None leaves extraction out.
    """

    bandwidth: float
    parallel: int = DEFAULT_PARALLEL
    per_connection: float | None = None
    latency: float = 0.0
    extract_rate: float | None = None

    def __post_init__(self) -> None:
        _check_rate("bandwidth", self.bandwidth)
        if isinstance(self.parallel, bool) or self.parallel < 1:
            raise OptionError(f"parallel must be 1 or more, not {self.parallel!r}")
        if self.per_connection is not None:
            _check_rate("per_connection", self.per_connection)
        if self.extract_rate is not None:
            _check_rate("extract_rate", self.extract_rate)
        if not 0 <= self.latency < math.inf:
            raise OptionError(f"latency must be 0 seconds or more, not {self.latency}")

    @property
    def connection_rate(self) -> float:
        """Bytes per second one download reaches at most."""
        if self.per_connection is not None:
            return self.per_connection
        return self.bandwidth / self.parallel


def _check_rate(name: str, value: float) -> None:
    if not 0 < value < math.inf:
        raise OptionError(f"{name} must be a positive number of bytes per second")


@dataclass
class _Download:
    index: int
    start: float
    ready: float
    remaining: float
    transfer_start: float = math.nan


def schedule_pull(
    sizes: Sequence[int],
    *,
    bandwidth: float,
    parallel: int = DEFAULT_PARALLEL,
    per_connection: float | None = None,
    latency: float = 0.0,
    extract_rate: float | None = None,
    uncompressed_sizes: Sequence[int] | None = None,
    cached: Sequence[bool] | None = None,
    blob_keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Simulate the pull of layers with these blob ``sizes``, bottom first.

    Returns one row per layer with the columns of :data:`SCHEDULE_COLUMNS`.
    ``cached`` marks layers already present, ``blob_keys`` (digests) let a
    blob listed twice download once, and ``uncompressed_sizes`` (default:
    ``sizes``) are what extraction writes. The module documentation gives
    the model and what it leaves out.
    """
    model = PullModel(
        bandwidth=bandwidth,
        parallel=parallel,
        per_connection=per_connection,
        latency=latency,
        extract_rate=extract_rate,
    )
    count = len(sizes)
    unpacked = list(sizes if uncompressed_sizes is None else uncompressed_sizes)
    present = [False] * count if cached is None else list(cached)
    keys = [f"#{i}" for i in range(count)] if blob_keys is None else list(blob_keys)
    for name, values in (
        ("uncompressed_sizes", unpacked),
        ("cached", present),
        ("blob_keys", keys),
    ):
        if len(values) != count:
            raise OptionError(f"{name} has {len(values)} items for {count} layers")
    if any(size < 0 for size in [*sizes, *unpacked]):
        raise OptionError("layer sizes must be 0 or more")

    fetched_by_key: dict[str, int] = {}
    for index in range(count):
        if not present[index]:
            fetched_by_key.setdefault(keys[index], index)
    fetched = sorted(fetched_by_key.values())
    times = _simulate_downloads([float(sizes[i]) for i in fetched], model)

    table = pd.DataFrame(
        {
            "layer": range(count),
            "size": [int(size) for size in sizes],
            "uncompressed_size": [int(size) for size in unpacked],
            "cached": [bool(flag) for flag in present],
        }
    )
    for position, column in enumerate(("start", "transfer_start", "end")):
        times_of: list[float] = [math.nan] * count
        for index, row in zip(fetched, times):
            times_of[index] = row[position]
        table[column] = times_of
    arrival = {key: table.at[index, "end"] for key, index in fetched_by_key.items()}
    _add_extraction(table, [arrival.get(key, math.nan) for key in keys], model)
    return table[list(SCHEDULE_COLUMNS)]


def _simulate_downloads(
    sizes: list[float], model: PullModel
) -> list[tuple[float, float, float]]:
    """Return ``(start, transfer_start, end)`` of each blob, in order."""
    results = [(math.nan, math.nan, math.nan)] * len(sizes)
    pending = list(range(len(sizes)))
    active: list[_Download] = []
    now = 0.0
    while pending or active:
        while pending and len(active) < model.parallel:
            index = pending.pop(0)
            ready = now + model.latency
            active.append(_Download(index, now, ready, sizes[index]))
        now = _advance(active, now, model)
        for item in [item for item in active if _done(item, now)]:
            active.remove(item)
            results[item.index] = (item.start, item.transfer_start, now)
    return results


def _done(item: _Download, now: float) -> bool:
    return item.ready <= now and item.remaining <= 0.0


def _advance(active: list[_Download], now: float, model: PullModel) -> float:
    """Move to the next event (a latency or a transfer ending) and return it."""
    flowing = [item for item in active if item.ready <= now]
    rate = min(model.connection_rate, model.bandwidth / max(len(flowing), 1))
    finish = {id(item): now + item.remaining / rate for item in flowing}
    waiting = [item.ready for item in active if item.ready > now]
    following = min(waiting + list(finish.values()))
    for item in flowing:
        if math.isnan(item.transfer_start):
            item.transfer_start = now
        if math.isclose(finish[id(item)], following, rel_tol=1e-12, abs_tol=1e-12):
            # Set exactly, so rounding cannot leave a few bytes in flight.
            item.remaining = 0.0
        else:
            item.remaining -= rate * (following - now)
    return following


def _add_extraction(
    table: pd.DataFrame, arrivals: list[float], model: PullModel
) -> None:
    starts = [math.nan] * len(table)
    ends = [math.nan] * len(table)
    if model.extract_rate is not None:
        previous = 0.0
        for index, arrived in enumerate(arrivals):
            if table.at[index, "cached"]:
                continue
            # A repeated blob is extracted again once its first copy arrived.
            starts[index] = max(arrived, previous)
            size = table.at[index, "uncompressed_size"]
            previous = ends[index] = starts[index] + size / model.extract_rate
    table["extract_start"] = starts
    table["extract_end"] = ends


def pull_seconds(
    layers: Sequence[tuple[int, int]],
    *,
    bandwidth: float,
    parallel: int = DEFAULT_PARALLEL,
    per_connection: float | None = None,
    extract_rate: float | None = None,
    latency: float = 0.0,
) -> tuple[float, float]:
    """Return (download seconds, total seconds) of a pull of ``layers``.

    ``layers`` are (compressed bytes, uncompressed bytes) of the layers to
    download, bottom first. See :func:`schedule_pull` for the options.
    """
    schedule = schedule_pull(
        [size for size, _ in layers],
        uncompressed_sizes=[size for _, size in layers],
        bandwidth=bandwidth,
        parallel=parallel,
        per_connection=per_connection,
        latency=latency,
        extract_rate=extract_rate,
    )
    download, _, total = _timings(schedule)
    return download, total


def _timings(schedule: pd.DataFrame) -> tuple[float, float, float]:
    """Return download seconds, extraction seconds and total seconds."""
    download = float(schedule["end"].max()) if schedule["end"].notna().any() else 0.0
    extracted = schedule[schedule["extract_end"].notna()]
    if extracted.empty:
        return download, 0.0, download
    extract = float((extracted["extract_end"] - extracted["extract_start"]).sum())
    return download, extract, max(download, float(extracted["extract_end"].max()))


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """Return the chain ID of each layer from the diff_ids, bottom first.

    The OCI image spec (config.md, "Layer ChainID") defines
    ``ChainID(L0) = DiffID(L0)`` and
    ``ChainID(Ln) = SHA256(ChainID(Ln-1) + " " + DiffID(Ln))``.
    """
    result: list[str] = []
    for diff_id in diff_ids:
        if result:
            text = f"{result[-1]} {diff_id}".encode()
            result.append(f"sha256:{hashlib.sha256(text).hexdigest()}")
        else:
            result.append(str(diff_id))
    return result


def layer_keys(image: Any, match: str = "chain_id") -> list[str]:
    """Return the key that recognises each layer of ``image`` (see :data:`MATCHES`)."""
    if match not in MATCHES:
        raise OptionError(f"invalid match {match!r}: use {', '.join(MATCHES)}")
    layers = image.layers
    if match == "digest":
        return [str(value) for value in layers["digest"]]
    diff_ids = [str(value) for value in layers["diff_id"]]
    return chain_ids(diff_ids) if match == "chain_id" else diff_ids


def pull_schedule(
    image: Any,
    *,
    bandwidth: float,
    cached: Any = None,
    match: str = "chain_id",
    parallel: int = DEFAULT_PARALLEL,
    per_connection: float | None = None,
    latency: float = 0.0,
    extract_rate: float | None = None,
) -> pd.DataFrame:
    """Return :func:`schedule_pull`'s table for pulling ``image``.

    ``cached`` is an image, or a list of images, already present.
    """
    present = _present_keys(cached, match)
    layers = image.layers
    return schedule_pull(
        [int(size) for size in layers["compressed_size"]],
        uncompressed_sizes=[int(size) for size in layers["uncompressed_size"]],
        cached=[key in present for key in layer_keys(image, match)],
        blob_keys=[str(digest) for digest in layers["digest"]],
        bandwidth=bandwidth,
        parallel=parallel,
        per_connection=per_connection,
        latency=latency,
        extract_rate=extract_rate,
    )


def _present_keys(cached: Any, match: str) -> set[str]:
    if cached is None:
        return set()
    images = [cached] if hasattr(cached, "layers") else list(cached)
    keys: set[str] = set()
    for image in images:
        keys.update(layer_keys(image, match))
    return keys


def pull_cost(
    images: Sequence[Any],
    *,
    bandwidth: float,
    parallel: int = DEFAULT_PARALLEL,
    per_connection: float | None = None,
    extract_rate: float | None = None,
    cached: Any = None,
    labels: Sequence[str] | None = None,
    match: str = "chain_id",
    latency: float = 0.0,
) -> pd.DataFrame:
    """Estimate each image's pull time, cold and with ``cached``'s layers present.

    Args:
        images: Image objects, layered and squashed variants for example.
        bandwidth: bytes per second of the link.
        parallel: blobs downloaded at a time.
        per_connection: bytes per second one download reaches at most
            (default ``bandwidth / parallel``).
        extract_rate: uncompressed bytes per second of extraction; None
            leaves extraction out.
        cached: an image, or a list of images, already present for the
            ``cached`` rows (a base image, the previous release). Without
            it the ``cached`` rows equal the ``cold`` ones.
        labels: a name per image (default: the references).
        match: how a present layer is recognised, see :data:`MATCHES`.
        latency: seconds per blob before its bytes flow.

    Returns one row per image and state with the columns of
    :data:`COST_COLUMNS`. The module documentation gives the model.
    """
    names = list(labels) if labels is not None else [str(i.reference) for i in images]
    if len(names) != len(images):
        raise OptionError(f"{len(names)} labels given for {len(images)} images")
    rows = []
    for name, image in zip(names, images):
        for state, present in (("cold", None), ("cached", cached)):
            schedule = pull_schedule(
                image,
                cached=present,
                bandwidth=bandwidth,
                parallel=parallel,
                per_connection=per_connection,
                latency=latency,
                extract_rate=extract_rate,
                match=match,
            )
            download, extract, total = _timings(schedule)
            fetched = schedule[schedule["end"].notna()]
            rows.append(
                {
                    "image": name,
                    "state": state,
                    "layers": len(fetched),
                    "bytes": int(fetched["size"].sum()),
                    "download_seconds": download,
                    "extract_seconds": extract,
                    "total_seconds": total,
                }
            )
    return pd.DataFrame(rows, columns=list(COST_COLUMNS))


def pull_chart(costs: pd.DataFrame, *, title: str | None = None) -> Any:
    """Draw :func:`pull_cost`'s table as grouped bars of estimated seconds."""
    import plotly.graph_objects as go

    figure = go.Figure()
    names = {"cold": "nothing cached", "cached": "cached layers present"}
    for state in ("cold", "cached"):
        part = costs[costs["state"] == state]
        figure.add_bar(
            name=names[state],
            # plotly reads tags in labels, and image names are untrusted.
            x=[html.escape(str(name)) for name in part["image"]],
            y=part["total_seconds"],
            customdata=part[["layers", "bytes", "download_seconds"]],
            hovertemplate="%{x}<br>%{y:.1f} s in all, download "
            "%{customdata[2]:.1f} s<br>%{customdata[0]} layers, "
            "%{customdata[1]:,} bytes<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        template="plotly_white",
        yaxis_title="estimated pull seconds",
        title=title or "Estimated pull time",
    )
    return figure
