"""Squash a range of layers into one and write the result as a new image.

The squashed layer S is chosen so that stacking it on the layers below the
range gives exactly the filesystem the range gave:

- every path whose visible version comes from the range is copied into S,
  from the layer that wrote that version;
- every path visible below the range but gone after it gets a whiteout.
  Only the top-most such path gets one, because a whiteout of a directory
  hides what is under it, and none where a non-directory entry of S
  replaces the parent anyway;
- whiteouts and opaque markers of the range that hide nothing below the
  range are dropped. An opaque marker that does hide something is written
  as whiteouts of the paths it hid, which gives the same filesystem;
- a hardlink is kept when its target's content is copied into S under the
  same path from the same layer. Otherwise the first visible link of its
  group is written as a regular file with the content they shared, and the
  group's other links point at it, so no link points at the wrong bytes.

Entries keep their mode, owner, modification time, link target and pax
records (extended attributes such as ``security.capability`` included).
Layers are read twice: once into the tables that plan the new layer, and
once with Python's tarfile, which keeps every pax record, to copy entries.
Names are written back as the bytes they were read from, including bytes
that are not UTF-8 (see ``_tar.decode_name``).

NOTE: GNU sparse entries and Solaris ``X`` extended headers are not
expected in image layers and are untested here. If tarfile and layerlab's
reader count entries differently, the copy stops with a LayerError instead
of writing a wrong layer.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._errors import LayerError, OptionError
from ._progress import ProgressHook, resolve
from ._tar import name_for_tarfile, name_from_tarfile

if TYPE_CHECKING:
    from ._image import Image

logger = logging.getLogger("layerlab")

# Content of hardlink sources kept for conversion to regular files stays in
# memory up to this size, then spills to a temporary file beside the output.
_SPOOL_LIMIT = 64 << 20


@dataclass(frozen=True)
class SquashPlan:
    """The content of the new layer that squashes layers ``first`` to ``last``.

    Attributes:
        first, last: the range of filesystem layers, inclusive, 0-based.
        copies: ``(layer, order)`` of each tar entry copied into the layer.
        as_files: ``(layer, order)`` of hardlinks written as regular files,
            mapped to the ``(layer, order)`` of the file whose bytes they share.
        relinks: ``(layer, order)`` of hardlinks that now point at the first
            link of their group written as a regular file, mapped to its path.
        whiteouts: paths below the range that the new layer must delete.
        saved_bytes: content bytes of the range that the new layer no longer
            stores (the range's versions hidden within the range).
    """

    first: int
    last: int
    copies: frozenset[tuple[int, int]]
    as_files: dict[tuple[int, int], tuple[int, int]]
    relinks: dict[tuple[int, int], str]
    whiteouts: tuple[str, ...]
    saved_bytes: int


def resolve_range(image: Image, first: Any, last: Any) -> tuple[int, int]:
    """Turn ``first`` and ``last`` (indexes or digest prefixes) into indexes."""
    count = len(image.layers)
    if count == 0:
        raise OptionError("the image has no layers to squash", image=image.reference)
    start = 0 if first is None else _layer_index(image, first, "first")
    stop = count - 1 if last is None else _layer_index(image, last, "last")
    if start > stop:
        raise OptionError(
            f"the range is empty: first layer {start} is above last layer {stop}",
            image=image.reference,
        )
    return start, stop


def _layer_index(image: Image, value: Any, name: str) -> int:
    count = len(image.layers)
    if isinstance(value, int) or (
        isinstance(value, str) and value.lstrip("-").isdigit()
    ):
        index = int(value)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise OptionError(
                f"{name} layer {value} is out of range: the image has {count} layers "
                f"(0 to {count - 1})",
                image=image.reference,
            )
        return index
    text = str(value)
    matches = [
        int(row.layer)
        for row in image.layers.itertuples()
        if _digest_matches(row.diff_id, text) or _digest_matches(row.digest, text)
    ]
    if len(matches) != 1:
        found = "no layer" if not matches else f"{len(matches)} layers"
        raise OptionError(
            f"{name} layer {text!r} matches {found}; give an index or a longer "
            "digest prefix",
            image=image.reference,
        )
    return matches[0]


def _digest_matches(digest: Any, prefix: str) -> bool:
    if digest is None or pd.isna(digest):
        return False
    text = str(digest)
    return text.startswith(prefix) or text.partition(":")[2].startswith(prefix)


def layer_for_history_count(image: Image, count: int) -> int:
    """Return the first layer made by the last ``count`` history entries.

    docker-squash 1.2.2 reads an integer ``--from-layer N`` as "squash the
    last N entries of ``docker history``", empty ones (ENV, CMD, ...)
    included. This converts such a count to the filesystem layer index that
    ``squash`` takes as ``first``.
    """
    history = image.history
    total = len(history)
    if not 1 <= count <= total:
        raise OptionError(
            f"history count {count} is out of range: the image has {total} "
            "history entries",
            image=image.reference,
        )
    start = total - count
    made = history[(history["history_index"] >= start) & history["layer"].notna()]
    if made.empty:
        raise OptionError(
            f"the last {count} history entries make no layer; give a larger count",
            image=image.reference,
        )
    return int(made["layer"].iloc[0])


def plan_squash(image: Image, first: int, last: int) -> SquashPlan:
    """Work out the new layer's content for squashing ``first`` to ``last``."""
    files = image.files
    upto = _visible_after(image, last)
    below = _visible_after(image, first - 1) if first > 0 else {}

    in_range = {path: row for path, row in upto.items() if first <= row[0] <= last}
    copies = set(in_range.values())
    as_files, relinks = _hardlinks_to_convert(files, in_range, first, last)
    for link in as_files:
        copies.discard(link)
    whiteouts = _whiteouts(below, upto, in_range, files)

    range_rows = files[(files["layer"] >= first) & (files["layer"] <= last)]
    hidden = range_rows["hidden_by"]
    saved = range_rows[
        range_rows["waste_reason"].notna() & (hidden >= first) & (hidden <= last)
    ]["size"].sum()
    return SquashPlan(
        first=first,
        last=last,
        copies=frozenset(copies),
        as_files=as_files,
        relinks=relinks,
        whiteouts=tuple(whiteouts),
        saved_bytes=int(saved),
    )


def predict_squash(
    image: Image, first: int | None = None, last: int | None = None
) -> int:
    """Return the content bytes that squashing ``first`` to ``last`` saves.

    These are the bytes of the range's versions that a later entry of the
    range hides; for the whole image it equals ``metrics.reclaimable_bytes``.
    """
    start, stop = resolve_range(image, first, last)
    files = image.files
    rows = files[(files["layer"] >= start) & (files["layer"] <= stop)]
    hidden = rows["hidden_by"]
    mask = rows["waste_reason"].notna() & (hidden >= start) & (hidden <= stop)
    return int(rows.loc[mask, "size"].sum())


def _visible_after(image: Image, layer: int) -> dict[str, tuple[int, int]]:
    """Return the filesystem after ``layer``: path -> (layer, order) of its entry."""
    from ._merge import merge

    if layer < 0:
        return {}
    if layer == len(image.layers) - 1:
        table = image.files[image.files["visible"]]
    else:
        entries = [image.entries(index) for index in range(layer + 1)]
        merged, _ = merge(entries)
        table = merged[merged["visible"]]
    return dict(
        zip(
            table["path"].tolist(),
            zip(table["layer"].tolist(), table["order"].tolist()),
        )
    )


def _hardlinks_to_convert(
    files: pd.DataFrame,
    in_range: dict[str, tuple[int, int]],
    first: int,
    last: int,
) -> tuple[dict[tuple[int, int], tuple[int, int]], dict[tuple[int, int], str]]:
    rows = files[(files["layer"] >= first) & (files["layer"] <= last)]
    regular = rows[rows["kind"] == "file"]
    sources: dict[tuple[int, str], list[int]] = {}
    for layer, path, order in zip(
        regular["layer"].tolist(), regular["path"].tolist(), regular["order"].tolist()
    ):
        sources.setdefault((layer, path), []).append(order)

    # The links that stay visible after the range, not after the whole image.
    selected = set(in_range.values())
    links = rows[rows["kind"] == "hardlink"]
    converted: dict[tuple[int, int], tuple[int, int]] = {}
    relinks: dict[tuple[int, int], str] = {}
    first_path: dict[tuple[int, int], str] = {}
    for layer, order, path, target in zip(
        links["layer"].tolist(),
        links["order"].tolist(),
        links["path"].tolist(),
        links["link_target"].tolist(),
    ):
        if (layer, order) not in selected:
            continue
        earlier = [o for o in sources.get((layer, target), []) if o < order]
        if not earlier:
            # NOTE: a link to a file of a lower layer is kept as a link. The
            # engine never writes one, because overlayfs copies the file up.
            continue
        source = (layer, earlier[-1])
        if in_range.get(target) == source:
            continue
        # The first link of a group carries the bytes; the others link to it,
        # so the content is still stored once.
        if source in first_path:
            relinks[(layer, order)] = first_path[source]
        else:
            converted[(layer, order)] = source
            first_path[source] = path
    return converted, relinks


def _whiteouts(
    below: dict[str, tuple[int, int]],
    upto: dict[str, tuple[int, int]],
    in_range: dict[str, tuple[int, int]],
    files: pd.DataFrame,
) -> list[str]:
    gone = {path for path in below if path not in upto}
    result = []
    for path in sorted(gone):
        parent = path.rpartition("/")[0]
        if parent and parent in gone:
            continue  # the parent's whiteout hides this path too
        # A parent that the range writes anew as a non-directory hides this
        # path by itself.
        if parent in in_range and not _is_dir(files, in_range[parent]):
            continue
        result.append(path)
    return result


def _is_dir(files: pd.DataFrame, row: tuple[int, int]) -> bool:
    match = files[(files["layer"] == row[0]) & (files["order"] == row[1])]
    return bool(len(match)) and str(match["kind"].iloc[0]) == "dir"


@dataclass(frozen=True)
class SquashResult:
    """The outcome of a squash.

    Attributes:
        output: the written archive.
        format: ``oci`` or ``docker``.
        first, last: the squashed range of filesystem layers.
        layers_before, layers_after: filesystem layer counts.
        content_bytes_before, content_bytes_after: content bytes stored in
            all layers (sum of regular-file sizes).
        saved_bytes: ``content_bytes_before - content_bytes_after``.
        predicted_bytes: what the tables predicted the squash would save.
        squashed_layer_bytes: size of the new layer's blob.
        loaded_tag: the tag the image was loaded as into the engine, if any.
    """

    output: str
    format: str
    first: int
    last: int
    layers_before: int
    layers_after: int
    content_bytes_before: int
    content_bytes_after: int
    saved_bytes: int
    predicted_bytes: int
    squashed_layer_bytes: int
    loaded_tag: str | None = None


def squash(
    image: Image | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str],
    first: Any = None,
    last: Any = None,
    format: str = "oci",
    compression: str = "gzip",
    tag: str | None = None,
    message: str | None = None,
    load: bool = False,
    progress: bool | ProgressHook | None = None,
) -> SquashResult:
    """Squash filesystem layers ``first`` to ``last`` (inclusive) into one.

    Layers are counted from 0 at the bottom; ``first`` and ``last`` may also
    be diff_id or digest prefixes, and default to the whole image. The new
    image is written to ``output`` as an OCI archive or a docker archive,
    through a temporary file beside it, so ``output`` is complete or absent.
    A docker archive stores every layer uncompressed, as ``docker save``
    does, so ``compression`` applies to OCI archives only. ``load`` loads the
    result into the Docker Engine (as a docker archive).
    """
    from ._image import open_image

    if format not in ("oci", "docker"):
        raise OptionError(f"invalid format {format!r}: use oci or docker")
    if compression not in ("gzip", "zstd", "none"):
        raise OptionError(
            f"invalid compression {compression!r}: use gzip, zstd or none"
        )
    owned = None
    if isinstance(image, (str, os.PathLike)):
        image = owned = open_image(os.fspath(image))
    try:
        result = _squash_image(
            image,
            output=os.fspath(output),
            first=first,
            last=last,
            format=format,
            compression=compression,
            tag=tag,
            message=message,
            hook=resolve(progress),
        )
        if load:
            from ._write import load_into_engine

            loaded = load_into_engine(image, result, tag=tag, message=message)
            result = dataclasses.replace(result, loaded_tag=loaded)
    finally:
        if owned is not None:
            owned.close()
    return result


def _squash_image(
    image: Image,
    *,
    output: str,
    first: Any,
    last: Any,
    format: str,
    compression: str,
    tag: str | None,
    message: str | None,
    hook: ProgressHook,
) -> SquashResult:
    from ._write import ImageWriter, validate_output

    target = validate_output(output, image)
    start, stop = resolve_range(image, first, last)
    plan = plan_squash(image, start, stop)
    with ImageWriter(target, format=format, compression=compression) as writer:
        layers = []
        for index in range(len(image.layers)):
            if index < start or index > stop:
                layers.append(writer.copy_layer(image, index))
            elif index == stop:
                layers.append(
                    writer.add_layer(
                        lambda out: write_squashed_layer(image, plan, out, hook)
                    )
                )
        config = _squashed_config(image, plan, layers, message)
        writer.finish(config, layers, tag=tag)

    before = int(image.files.loc[image.files["kind"] == "file", "size"].sum())
    after = _content_after(image, plan)
    logger.info(
        "squashed layers %d-%d of %s into %s: %d bytes saved",
        start,
        stop,
        image.reference,
        target,
        before - after,
    )
    return SquashResult(
        output=target,
        format=format,
        first=start,
        last=stop,
        layers_before=len(image.layers),
        layers_after=len(layers),
        content_bytes_before=before,
        content_bytes_after=after,
        saved_bytes=before - after,
        predicted_bytes=plan.saved_bytes,
        squashed_layer_bytes=int(layers[start]["size"]),
    )


def _content_after(image: Image, plan: SquashPlan) -> int:
    files = image.files
    regular = files[files["kind"] == "file"]
    outside = regular[(regular["layer"] < plan.first) | (regular["layer"] > plan.last)]
    inside = regular.set_index(["layer", "order"])["size"]
    copied = sum(int(inside.get(row, 0)) for row in plan.copies)
    converted = sum(int(inside.get(source, 0)) for source in plan.as_files.values())
    return int(outside["size"].sum()) + copied + converted


def write_squashed_layer(
    image: Image, plan: SquashPlan, out: Any, hook: ProgressHook
) -> None:
    """Write the squashed layer's uncompressed tar stream to ``out``."""
    total = int(image.layers.loc[plan.first : plan.last, "uncompressed_size"].sum())
    hook.start(total, f"squashing layers {plan.first}-{plan.last}")
    try:
        # This encoding writes the names from name_for_tarfile as their bytes.
        with tarfile.open(
            fileobj=out,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            errors="surrogateescape",
        ) as tar:
            copier = _LayerCopier(image, plan, tar)
            try:
                for path in plan.whiteouts:
                    tar.addfile(_whiteout_info(path))
                for layer in range(plan.first, plan.last + 1):
                    copier.copy(layer)
                    hook.advance(int(image.layers.loc[layer, "uncompressed_size"]))
            finally:
                copier.close()
    finally:
        hook.finish()


def _whiteout_info(path: str) -> tarfile.TarInfo:
    parent, _, name = path.rpartition("/")
    marker = f"{parent}/.wh.{name}" if parent else f".wh.{name}"
    info = tarfile.TarInfo(name_for_tarfile(marker))
    info.mode = 0o644
    return info


class _LayerCopier:
    """Copy the planned entries of the range's layers into the new layer's tar."""

    def __init__(self, image: Image, plan: SquashPlan, tar: tarfile.TarFile) -> None:
        self._image = image
        self._plan = plan
        self._tar = tar
        self._sources = set(plan.as_files.values())
        self._spooled: dict[tuple[int, int], Any] = {}
        wanted = set(plan.copies) | set(plan.as_files) | self._sources
        self._expected = _entry_paths(image, plan, wanted)

    def close(self) -> None:
        for handle in self._spooled.values():
            handle.close()

    def copy(self, layer: int) -> None:
        context = self._image._context(layer)
        name = "(start of stream)"
        try:
            # This encoding keeps every byte of a name, whatever the locale,
            # for name_from_tarfile.
            with (
                self._image.open_layer(layer) as stream,
                tarfile.open(
                    fileobj=stream,
                    mode="r|",
                    encoding="utf-8",
                    errors="surrogateescape",
                ) as source,
            ):
                # Orders count every entry the tar yields, as layerlab's
                # reader (_tar.TarReader) does.
                for order, member in enumerate(source):
                    name = member.name
                    if (layer, order) in self._expected:
                        self._copy_entry(source, member, (layer, order), context)
        except tarfile.TarError as error:
            raise LayerError(
                f"cannot copy the layer's entries after {name!r}: {error}", **context
            ) from None

    def _copy_entry(
        self,
        source: tarfile.TarFile,
        member: tarfile.TarInfo,
        key: tuple[int, int],
        context: dict[str, Any],
    ) -> None:
        from ._layer import normalise_path

        path, _ = normalise_path(name_from_tarfile(member.name))
        if path != self._expected[key]:
            # tarfile and layerlab's reader counted the entries differently,
            # so copying on would write the wrong entries.
            raise LayerError(
                f"entry {key[1]} is {path!r} here but {self._expected[key]!r} in "
                "the files table; the squash stopped to avoid a wrong layer",
                **context,
            )
        if key in self._sources and member.isreg():
            self._spooled[key] = _spool(source, member)
        if key in self._plan.as_files:
            content = self._spooled[self._plan.as_files[key]]
            _write_as_file(self._tar, member, path, content)
        elif key in self._plan.copies:
            link = self._plan.relinks.get(key)
            spooled = self._spooled.get(key)
            _write_copy(self._tar, source, member, path, spooled, link)


def _entry_paths(
    image: Image, plan: SquashPlan, keys: set[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    files = image.files
    rows = files[(files["layer"] >= plan.first) & (files["layer"] <= plan.last)]
    paths = dict(
        zip(
            zip(rows["layer"].tolist(), rows["order"].tolist()),
            rows["path"].tolist(),
        )
    )
    return {key: paths[key] for key in keys}


def _spool(source: tarfile.TarFile, member: tarfile.TarInfo) -> Any:
    # The copier closes the handle once the whole layer is written.
    handle = tempfile.SpooledTemporaryFile(max_size=_SPOOL_LIMIT)  # noqa: SIM115
    data = source.extractfile(member)
    if data is not None:
        shutil.copyfileobj(data, handle, 1 << 20)
    handle.seek(0)
    return handle


def _write_copy(
    tar: tarfile.TarFile,
    source: tarfile.TarFile,
    member: tarfile.TarInfo,
    path: str,
    spooled: Any,
    link: str | None,
) -> None:
    from ._layer import normalise_path

    info = _renamed(member, path)
    if member.islnk():
        if link is not None:
            info.linkname = name_for_tarfile(link)
        else:
            info.linkname = normalise_path(member.linkname)[0]
        info.size = 0
    data = None
    if member.isreg():
        # A spooled entry's data was already read from the stream.
        data = spooled if spooled is not None else source.extractfile(member)
        if spooled is not None:
            spooled.seek(0)
    tar.addfile(info, data)


def _renamed(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """Copy ``member`` under ``path`` (a table's path), keeping its other pax
    records (xattrs).

    tarfile's writer lets a pax record win over the header field it restates,
    so the records for the name, link name and size, which the copy may
    change, are dropped and written again from the new values where needed.
    """
    info = copy.copy(member)
    info.pax_headers = {
        key: value
        for key, value in member.pax_headers.items()
        if key not in ("path", "linkpath", "size")
    }
    info.name = name_for_tarfile(path)
    return info


def _write_as_file(
    tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, content: Any
) -> None:
    info = _renamed(member, path)
    info.type = tarfile.REGTYPE
    info.linkname = ""
    content.seek(0, io.SEEK_END)
    info.size = content.tell()
    content.seek(0)
    tar.addfile(info, content)


def _squashed_config(
    image: Image, plan: SquashPlan, layers: list[dict[str, Any]], message: str | None
) -> dict[str, Any]:
    config = copy.deepcopy(image.config)
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": [layer["diff_id"] for layer in layers],
    }
    config["history"] = _squashed_history(image, plan, message)
    return config


def _squashed_history(
    image: Image, plan: SquashPlan, message: str | None
) -> list[dict[str, Any]]:
    original = list(image.config.get("history") or [])
    history = image.history
    if not original:
        return []
    made = history[history["layer"].notna()]
    in_range = made[(made["layer"] >= plan.first) & (made["layer"] <= plan.last)]
    squashed_indexes = set(in_range["history_index"].astype(int).tolist())
    commands = [
        original[index].get("created_by", "") for index in sorted(squashed_indexes)
    ]
    entry = {
        "created": original[max(squashed_indexes)].get("created")
        if squashed_indexes
        else None,
        "created_by": " && ".join(command for command in commands if command)
        or "layerlab squash",
        "comment": message
        or f"layerlab squash of layers {plan.first}-{plan.last} "
        f"({len(commands)} steps)",
    }
    result = []
    last_index = max(squashed_indexes) if squashed_indexes else -1
    for index, item in enumerate(original):
        if index in squashed_indexes:
            if index == last_index:
                result.append({key: value for key, value in entry.items() if value})
            continue
        result.append(item)
    return result


def simulate_combine(
    image: Image, first: Any, last: Any, *, compression: str = "gzip"
) -> Image:
    """Predict the image as if RUN steps ``first`` to ``last`` were one step.

    Combining consecutive RUN steps into one stores what squashing those
    layers stores, so the prediction is a squash written to a temporary
    archive and read back: its tables and metrics are those of the combined
    build, without rebuilding. The returned image owns the temporary file
    until it is closed.
    """
    from ._image import open_image

    handle, path = tempfile.mkstemp(prefix="layerlab-combined-", suffix=".tar")
    os.close(handle)
    try:
        squash(image, output=path, first=first, last=last, compression=compression)
        predicted = open_image(f"oci-archive:{path}", cache=False)
    except BaseException:
        os.unlink(path)
        raise
    cleanup = predicted._source.cleanup

    def remove() -> None:
        if cleanup is not None:
            cleanup()
        os.unlink(path)

    predicted._source.cleanup = remove
    return predicted
