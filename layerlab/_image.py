"""``open_image`` and the ``Image`` it returns: an image as pandas tables."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import operator
import os
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from . import _cache, _schema
from ._errors import InvalidImageError, LayerError
from ._format import counted
from ._history import history_table
from ._layer import LayerRead, detect_compression, read_layer
from ._merge import merge
from ._progress import ProgressHook, resolve
from ._refs import open_source
from ._source import BlobOpener, ImageSource
from ._tables import layers_table, waste_table

logger = logging.getLogger("layerlab")

# Below this many bytes to read, starting worker processes costs more than
# it saves.
PARALLEL_MIN_BYTES = 32 << 20


@dataclass
class _LayerInfo:
    entries: pd.DataFrame | None
    compression: str
    blob_size: int
    uncompressed_size: int
    digest: str | None
    escaped_paths: list[str]


class Image:
    """A container image read into tables.

    Attributes:
        reference: the reference the image was opened with.
        config: the image config (JSON object).
        manifest: the manifest as the source stores it.
        layers, files, filesystem, waste, history: DataFrames whose columns
            are documented in ``layerlab.columns``.
        warnings: problems found while reading that did not stop it, such as
            tar entries whose paths tried to leave the root.
    """

    def __init__(
        self,
        source: ImageSource,
        infos: list[_LayerInfo],
        *,
        tables: dict[str, Any] | None = None,
        cache_key: str | None = None,
    ) -> None:
        self.reference = source.reference
        self.config = source.config
        self.manifest = source.manifest
        self._source = source
        self._infos = infos
        self._cache_key = cache_key
        self._cached = tables or {}
        self.warnings: list[str] = []
        self.history = history_table(source.config, len(infos))
        if "files" in self._cached:
            self.files = self._cached["files"]
            self.filesystem = self._cached["filesystem"]
        else:
            self.files, self.filesystem = merge([info.entries for info in infos])
        # The files table contains every entry, so the per-layer tables can go.
        for info in infos:
            info.entries = None
        self._starts = np.searchsorted(
            self.files["layer"].to_numpy(), np.arange(len(infos) + 1)
        )
        self.waste = waste_table(self.files)
        self.layers = layers_table(self, infos)
        self._finalizer = weakref.finalize(self, source.close)

    def __repr__(self) -> str:
        size = int(self.layers["content_size"].sum()) if len(self.layers) else 0
        return (
            f"<layerlab.Image {self.reference!r}: {len(self.layers)} layers, "
            f"{len(self.filesystem)} paths, {size} content bytes>"
        )

    def _repr_html_(self) -> str:
        from ._summary import summary_html

        return summary_html(self)

    def close(self) -> None:
        """Release temporary files held for the image (an engine export)."""
        self._finalizer()

    def __enter__(self) -> Image:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _layer_index(self, index: int) -> int:
        # Negative indexes count from the top layer, as for a Python list.
        count = len(self._infos)
        position = operator.index(index)
        if not -count <= position < count:
            layers = "1 layer" if count == 1 else f"{count} layers"
            valid = f"0 to {count - 1}, or -{count} to -1" if count else "none"
            raise IndexError(
                f"layer index {index} is out of range: the image has {layers} "
                f"(valid indexes: {valid})"
            )
        return position % count

    def entries(self, index: int) -> pd.DataFrame:
        """Return layer ``index``'s tar entries before the merge.

        ``index`` counts from 0 (the lowest layer); a negative one counts from
        the top, as in a list. Raises IndexError when it is out of range.
        """
        index = self._layer_index(index)
        start, stop = int(self._starts[index]), int(self._starts[index + 1])
        rows = self.files.iloc[start:stop]
        return rows[list(_schema.ENTRY_COLUMNS)].reset_index(drop=True)

    def layer_descriptor(self, index: int) -> dict[str, Any]:
        """Return the media type, digest and size of layer ``index``'s blob.

        ``index`` is read as in :meth:`entries`.
        """
        index = self._layer_index(index)
        descriptor = self._source.layers[index]
        info = self._infos[index]
        return {
            "mediaType": descriptor.media_type,
            "digest": descriptor.digest or info.digest,
            "size": info.blob_size,
        }

    def open_layer(self, index: int) -> contextlib.AbstractContextManager[BinaryIO]:
        """Open layer ``index`` as its uncompressed tar stream, in a ``with``.

        ``index`` is read as in :meth:`entries`. The digest is checked when
        the stream has been read to its end.
        """
        return self._open_layer(self._layer_index(index))

    @contextlib.contextmanager
    def _open_layer(self, index: int) -> Iterator[BinaryIO]:
        from ._layer import open_tar_stream

        diff_ids = self.config.get("rootfs", {}).get("diff_ids") or []
        with (
            self._source.openers[index].open() as blob,
            open_tar_stream(
                blob,
                diff_id=diff_ids[index] if index < len(diff_ids) else None,
                context=self._context(index),
            ) as stream,
        ):
            yield stream

    def _context(self, index: int) -> dict[str, Any]:
        return {"image": self.reference, "layer": _layer_label(self, index)}

    @cached_property
    def metrics(self) -> Any:
        """Both families of metrics: dive's and layerlab's exact ones."""
        from ._metrics import compute_metrics, dive_from_cache, dive_to_cache

        dive = dive_from_cache(self._cached)
        metrics = compute_metrics(self, dive=dive)
        if dive is None and self._cache_key is not None:
            meta, inefficiencies = dive_to_cache(metrics.dive)
            _cache.store_image_tables(
                self._cache_key,
                {
                    "files": self.files,
                    "filesystem": self.filesystem,
                    "inefficiencies": inefficiencies,
                },
                {**_infos_meta(self._infos), "dive": meta},
            )
        return metrics


def _infos_meta(infos: list[_LayerInfo]) -> dict[str, Any]:
    return {
        "layers": [
            {
                "compression": info.compression,
                "blob_size": info.blob_size,
                "uncompressed_size": info.uncompressed_size,
                "digest": info.digest,
                "escaped_paths": info.escaped_paths,
            }
            for info in infos
        ]
    }


def _infos_from_meta(meta: dict[str, Any]) -> list[_LayerInfo]:
    return [_LayerInfo(entries=None, **layer) for layer in meta["layers"]]


def _layer_label(image: Image, index: int) -> str:
    diff_ids = image.config.get("rootfs", {}).get("diff_ids") or []
    label = f"{index}"
    if index < len(diff_ids):
        label += f" ({str(diff_ids[index])[:19]})"
    return label


def open_image(
    ref: str | os.PathLike[str],
    *,
    platform: str | None = None,
    hash_content: bool = True,
    cache: bool = True,
    progress: bool | ProgressHook | None = None,
    workers: int | None = None,
) -> Image:
    """Read the image that ``ref`` names into tables.

    Args:
        ref: ``docker-archive:FILE``, ``oci-archive:FILE``, ``oci:DIR``,
            ``docker-daemon:NAME[:TAG]``, a path, or a bare image name. After
            an archive or layout path, ``:NAME[:TAG]`` or ``:@N`` selects one
            of several images, as with skopeo; the path may contain colons.
        platform: ``os/arch[/variant]`` to pick from a multi-platform index
            (the host's platform by default). A single-platform image whose
            config names another platform raises PlatformNotFoundError.
            Names are compared as containerd normalises them, so
            ``linux/aarch64`` is ``linux/arm64`` and ``arm64/v8`` is ``arm64``.
        hash_content: hash regular files (xxh3-128), which identical-rewrite
            detection needs; turning it off is faster.
        cache: reuse and store parsed layers in the on-disk cache.
        progress: True for a tqdm bar, or a hook receiving bytes read.
        workers: processes that read layers in parallel; one per CPU by
            default.
    """
    source = open_source(os.fspath(ref), platform=platform)
    try:
        diff_ids = _diff_ids(source)
        key = _image_key(source, hash_content) if cache else None
        cached = _load_cached(key)
        if cached is not None:
            logger.info(
                "%s: read from the image cache, no layer parsed", source.reference
            )
            infos = _infos_from_meta(cached["meta"])
            image = Image(source, infos, tables=cached, cache_key=key)
        else:
            infos = _read_layers(
                source,
                diff_ids,
                hash_content=hash_content,
                cache=cache,
                progress=resolve(progress),
                workers=workers or os.cpu_count() or 1,
            )
            image = Image(source, infos, cache_key=key)
            if key is not None:
                _cache.store_image_tables(
                    key,
                    {"files": image.files, "filesystem": image.filesystem},
                    _infos_meta(infos),
                )
    except BaseException:
        source.close()
        raise
    for index, info in enumerate(infos):
        if info.escaped_paths:
            message = (
                f"layer {index}: {counted(len(info.escaped_paths), 'entry', 'entries')}"
                " tried to leave the root and were kept inside it, first "
                f"{info.escaped_paths[0]!r}"
            )
            image.warnings.append(message)
            logger.warning("%s: %s", source.reference, message)
    return image


def _image_key(source: ImageSource, hash_content: bool) -> str:
    config = source.config_digest or json.dumps(source.config, sort_keys=True)
    layers = [layer.digest or "" for layer in source.layers]
    diff_ids = [str(item) for item in source.config["rootfs"]["diff_ids"]]
    return _cache.image_key([config, *layers, *diff_ids, f"hash={hash_content}"])


def _load_cached(key: str | None) -> dict[str, Any] | None:
    if key is None:
        return None
    found = _cache.load_image_tables(key, ["files", "filesystem"])
    if found is None:
        return None
    found["files"] = _schema.conform(found["files"], _schema.FILES_COLUMNS)
    found["filesystem"] = _schema.conform(
        found["filesystem"], _schema.FILESYSTEM_COLUMNS
    )
    extra = _cache.load_image_tables(key, ["inefficiencies"])
    if extra is not None and "dive" in extra["meta"]:
        found["dive"] = extra["meta"]["dive"]
        found["inefficiencies"] = extra["inefficiencies"]
    return found


def _diff_ids(source: ImageSource) -> list[str | None]:
    rootfs = source.config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise InvalidImageError("config has no rootfs.diff_ids", image=source.reference)
    if len(diff_ids) != len(source.layers):
        raise InvalidImageError(
            f"config lists {len(diff_ids)} diff_ids but the manifest "
            f"{len(source.layers)} layers",
            image=source.reference,
        )
    return [str(item) for item in diff_ids]


def _read_layers(
    source: ImageSource,
    diff_ids: list[str | None],
    *,
    hash_content: bool,
    cache: bool,
    progress: ProgressHook,
    workers: int,
) -> list[_LayerInfo]:
    infos: dict[int, _LayerInfo] = {}
    pending: list[int] = []
    for index, diff_id in enumerate(diff_ids):
        cached = (
            _cache.load(diff_id, hash_content=hash_content)
            if (cache and diff_id)
            else None
        )
        if cached is None:
            pending.append(index)
        else:
            logger.debug("layer %s: from the layer cache", _label(index, diff_id))
            infos[index] = _from_cache(source, index, cached)

    # The same blob may appear twice (an empty layer repeated); read it once.
    def blob_key(index: int) -> str:
        return source.layers[index].digest or diff_ids[index] or f"#{index}"

    unique: dict[str, int] = {}
    for index in pending:
        unique.setdefault(blob_key(index), index)
    to_read = list(unique.values())
    total = sum(_blob_size(source, index) for index in to_read)
    progress.start(total, f"reading {source.reference}")
    try:
        results = _run_reads(
            source,
            diff_ids,
            to_read,
            hash_content=hash_content,
            cache=cache,
            progress=progress,
            workers=workers,
            total=total,
        )
    finally:
        progress.finish()
    logger.info(
        "%s: %d of %d layers from the layer cache, %d parsed",
        source.reference,
        len(diff_ids) - len(pending),
        len(diff_ids),
        len(pending),
    )
    for index in pending:
        first = unique[blob_key(index)]
        infos[index] = results[first]
    return [infos[index] for index in range(len(diff_ids))]


def _blob_size(source: ImageSource, index: int) -> int:
    opener = source.openers[index]
    size = getattr(opener, "size", None)
    return int(size if size is not None else source.layers[index].size or 0)


def _run_reads(
    source: ImageSource,
    diff_ids: list[str | None],
    indexes: list[int],
    *,
    hash_content: bool,
    cache: bool,
    progress: ProgressHook,
    workers: int,
    total: int,
) -> dict[int, _LayerInfo]:
    jobs = {
        index: (
            source.openers[index],
            source.layers[index].digest,
            diff_ids[index],
            hash_content,
            cache,
            {"image": source.reference, "layer": _label(index, diff_ids[index])},
        )
        for index in indexes
    }
    results: dict[int, _LayerInfo] = {}
    if len(indexes) < 2 or workers < 2 or total < PARALLEL_MIN_BYTES:
        for index, job in jobs.items():
            results[index] = _logged_info(index, diff_ids[index], _timed_read(*job))
            progress.advance(_blob_size(source, index))
        return results

    # Largest first, so the longest layer does not start last.
    order = sorted(indexes, key=lambda index: -_blob_size(source, index))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(indexes)), mp_context=context
    ) as pool:
        futures = {index: pool.submit(_timed_read, *jobs[index]) for index in order}
        for index in order:
            timed = futures[index].result()
            results[index] = _logged_info(index, diff_ids[index], timed)
            progress.advance(_blob_size(source, index))
    return results


def _label(index: int, diff_id: str | None) -> str:
    return f"{index} ({diff_id[:19]})" if diff_id else str(index)


def _read_one(
    opener: BlobOpener,
    digest: str | None,
    diff_id: str | None,
    hash_content: bool,
    cache: bool,
    context: dict[str, Any],
) -> LayerRead:
    try:
        with opener.open() as blob:
            read = read_layer(
                blob,
                digest=digest,
                diff_id=diff_id,
                hash_content=hash_content,
                context=context,
            )
    except OSError as error:
        raise LayerError(f"cannot read the layer blob: {error}", **context) from None
    if cache and diff_id:
        _cache.store(
            diff_id,
            read.entries,
            hash_content=hash_content,
            uncompressed_size=read.uncompressed_size,
            escaped_paths=read.escaped_paths,
        )
    return read


def _timed_read(*job: Any) -> tuple[LayerRead, float]:
    # Timed in the process that reads, so that parallel reads get their own
    # duration rather than their wait for the pool.
    started = time.perf_counter()
    read = _read_one(*job)
    return read, time.perf_counter() - started


def _logged_info(
    index: int, diff_id: str | None, timed: tuple[LayerRead, float]
) -> _LayerInfo:
    read, seconds = timed
    logger.debug(
        "layer %s: parsed %d bytes (%d uncompressed) in %.2f s",
        _label(index, diff_id),
        read.blob_size,
        read.uncompressed_size,
        seconds,
    )
    return _to_info(read)


def _to_info(read: LayerRead) -> _LayerInfo:
    return _LayerInfo(
        entries=read.entries,
        compression=read.compression,
        blob_size=read.blob_size,
        uncompressed_size=read.uncompressed_size,
        digest=read.digest,
        escaped_paths=read.escaped_paths,
    )


def _from_cache(
    source: ImageSource, index: int, cached: _cache.CachedLayer
) -> _LayerInfo:
    with source.openers[index].open() as blob:
        head = blob.read(4)
    return _LayerInfo(
        entries=cached.entries,
        compression=detect_compression(head),
        blob_size=_blob_size(source, index),
        uncompressed_size=cached.uncompressed_size,
        digest=source.layers[index].digest,
        escaped_paths=cached.escaped_paths,
    )
