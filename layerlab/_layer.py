"""Read one layer blob into a table of its tar entries, in a single pass.

The blob's bytes flow through a digest check, a decompressor chosen from the
first bytes (not from the media type, which some tools get wrong), a second
digest check for the diff_id, and a streaming tar parser that hashes regular
file contents on the way. Nothing is extracted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pandas as pd
import xxhash
import zstandard

from . import _schema
from ._errors import DigestMismatchError, InvalidEntryError, LayerError
from ._tar import TarEntry, TarFormatError, TarReader

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20

# No real file is this large; a header that claims more is corrupt or hostile,
# and skipping that many bytes would only end in a confusing truncation error.
MAX_ENTRY_SIZE = 1 << 44

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

_KIND_BY_TYPE = {
    ord("0"): "file",
    ord("7"): "file",
    ord("S"): "file",
    ord("1"): "hardlink",
    ord("2"): "symlink",
    ord("3"): "char",
    ord("4"): "block",
    ord("5"): "dir",
    ord("6"): "fifo",
}


@dataclass
class LayerRead:
    """The result of reading one layer blob."""

    entries: pd.DataFrame
    compression: str
    blob_size: int
    uncompressed_size: int
    digest: str
    diff_id: str
    escaped_paths: list[str]


class _HashingReader(io.RawIOBase):
    """Pass bytes through while hashing and counting them."""

    def __init__(self, source: Any, algorithm: str = "sha256") -> None:
        self._source = source
        self._hasher = hashlib.new(algorithm)
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._source.readinto(buffer) or 0
        if count:
            self._hasher.update(memoryview(buffer)[:count])
            self.count += count
        return count

    def hexdigest(self) -> str:
        """Return the digest of everything read so far."""
        return self._hasher.hexdigest()

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _GzipReader(io.RawIOBase):
    """Decompress concatenated gzip members (estargz writes one per file)."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # max_length bounds the output, so a small bomb cannot fill memory.
        while not self._done:
            if not self._input:
                self._input = self._decompressor.unconsumed_tail or self._source.read(
                    CHUNK
                )
            if not self._input:
                if not self._decompressor.eof:
                    raise EOFError("gzip stream ended before its end marker")
                self._done = True
                break
            data = self._decompressor.decompress(self._input, len(buffer))
            self._input = self._decompressor.unconsumed_tail
            if self._decompressor.eof:
                self._input = self._decompressor.unused_data
                self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                if not self._input:
                    self._input = self._source.read(CHUNK)
                    if not self._input:
                        self._done = True
            if data:
                buffer[: len(data)] = data
                return len(data)
        return 0


def detect_compression(head: bytes) -> str:
    """Return ``gzip``, ``zstd`` or ``none`` from a blob's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def decompressed_reader(raw: io.BufferedReader, compression: str) -> Any:
    """Return a reader of ``raw`` inflated (``gzip``, ``zstd``, or ``none``)."""
    if compression == "gzip":
        return io.BufferedReader(_GzipReader(raw), CHUNK)
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True, closefd=False
        )
        return io.BufferedReader(reader, CHUNK)  # type: ignore[arg-type]
    return raw


def read_layer(
    blob: BinaryIO,
    *,
    digest: str | None,
    diff_id: str | None,
    hash_content: bool = True,
    context: dict[str, Any] | None = None,
) -> LayerRead:
    """Read a layer blob, verify its digests, and return its entries.

    ``digest`` is the expected digest of the blob as stored and ``diff_id``
    that of the uncompressed tar; either may be None when the source does not
    know it. ``context`` (image and layer names) goes into every error.
    """
    where = context or {}
    algorithm = _algorithm(digest or diff_id)
    raw_hash = _HashingReader(blob, algorithm)
    raw = io.BufferedReader(raw_hash, CHUNK)
    compression = detect_compression(raw.peek(4)[:4])
    tar_hash = (
        raw_hash
        if compression == "none"
        else _HashingReader(decompressed_reader(raw, compression), algorithm)
    )
    stream = io.BufferedReader(tar_hash, CHUNK) if tar_hash is not raw_hash else raw

    parsed = _parse_tar(stream, hash_content=hash_content, where=where)
    try:
        _drain(stream)
        if tar_hash is not raw_hash:
            raw_hash.drain()
    except (EOFError, OSError, zlib.error, zstandard.ZstdError) as error:
        raise LayerError(f"layer blob is corrupt: {error}", **where) from None

    found_digest = f"{algorithm}:{raw_hash.hexdigest()}"
    found_diff_id = f"{algorithm}:{tar_hash.hexdigest()}"
    _check(found_digest, digest, "blob digest", where)
    _check(found_diff_id, diff_id, "diff_id (digest of the uncompressed tar)", where)
    entries, escaped = parsed
    return LayerRead(
        entries=entries,
        compression=compression,
        blob_size=raw_hash.count,
        uncompressed_size=tar_hash.count,
        digest=found_digest,
        diff_id=found_diff_id,
        escaped_paths=escaped,
    )


def _algorithm(digest: str | None) -> str:
    if digest and digest.startswith("sha512:"):
        return "sha512"
    return "sha256"


def _drain(stream: Any) -> None:
    while stream.read(CHUNK):
        pass


def _check(found: str, expected: str | None, what: str, where: dict[str, Any]) -> None:
    if expected is not None and found != expected:
        raise DigestMismatchError(
            f"{what} is {found}, expected {expected}; the blob is corrupt or "
            "was altered",
            **where,
        )


def _parse_tar(
    stream: Any, *, hash_content: bool, where: dict[str, Any]
) -> tuple[pd.DataFrame, list[str]]:
    columns: dict[str, list[Any]] = {name: [] for name in _schema.ENTRY_COLUMNS}
    escaped: list[str] = []
    name = "(start of stream)"
    reader = TarReader(stream)
    try:
        for order, entry in enumerate(reader):
            name = entry.name
            _add_entry(columns, entry, order, reader, hash_content, escaped, where)
    except TarFormatError as error:
        raise LayerError(
            f"tar stream is truncated or corrupt after entry {name!r}: {error}",
            **where,
        ) from None
    except (EOFError, OSError, zlib.error, zstandard.ZstdError) as error:
        raise LayerError(
            f"layer blob is truncated or corrupt after entry {name!r}: {error}",
            **where,
        ) from None
    table = pd.DataFrame(columns)
    return _schema.conform(table, _schema.ENTRY_COLUMNS), escaped


def _add_entry(
    columns: dict[str, list[Any]],
    entry: TarEntry,
    order: int,
    reader: TarReader,
    hash_content: bool,
    escaped: list[str],
    where: dict[str, Any],
) -> None:
    if entry.size > MAX_ENTRY_SIZE:
        raise InvalidEntryError(
            f"tar header claims a size of {entry.size} bytes",
            entry=entry.name,
            **where,
        )
    path, left_root = normalise_path(entry.name)
    if left_root:
        escaped.append(entry.name)
    kind = _KIND_BY_TYPE.get(entry.typeflag)
    if not path or kind is None:
        return  # the root directory itself, or a record that is not a file
    base = posixpath.basename(path)
    if base.startswith(WHITEOUT_PREFIX):
        path, kind = _marker(path, base)

    link_target = None
    if kind == "symlink":
        link_target = entry.linkname
    elif kind == "hardlink":
        link_target, link_escaped = normalise_path(entry.linkname)
        if link_escaped:
            escaped.append(entry.linkname)

    content_hash = None
    size = entry.size if kind == "file" else 0
    if kind == "file" and hash_content:
        content_hash = _hash_data(reader, entry)

    columns["path"].append(path)
    columns["kind"].append(kind)
    columns["size"].append(size)
    columns["tar_size"].append(entry.size)
    columns["mode"].append(entry.mode & 0o7777)
    columns["uid"].append(entry.uid)
    columns["gid"].append(entry.gid)
    columns["mtime"].append(entry.mtime)
    columns["link_target"].append(link_target)
    columns["hash"].append(content_hash)
    columns["order"].append(order)


def _marker(path: str, base: str) -> tuple[str, str]:
    parent = posixpath.dirname(path)
    if base == OPAQUE_MARKER:
        return parent, "opaque"
    hidden = base[len(WHITEOUT_PREFIX) :]
    return (posixpath.join(parent, hidden) if parent else hidden), "whiteout"


def _hash_data(reader: TarReader, entry: TarEntry) -> str:
    hasher = xxhash.xxh3_128()
    left = entry.size
    while left > 0:
        data = reader.read_data(min(CHUNK, left))
        hasher.update(data)
        left -= len(data)
    return hasher.hexdigest()


def normalise_path(name: str) -> tuple[str, bool]:
    """Return ``name`` relative to the root, and whether it tried to leave it.

    ``./x``, ``/x`` and ``x`` are one path; ``..`` components are resolved
    inside the root, as a container runtime does when it extracts a layer.
    """
    parts: list[str] = []
    left_root = False
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            else:
                left_root = True
            continue
        parts.append(part)
    return "/".join(parts), left_root


@contextlib.contextmanager
def open_tar_stream(
    blob: BinaryIO, *, diff_id: str | None, context: dict[str, Any] | None = None
) -> Iterator[Any]:
    """Yield the uncompressed tar stream of a blob; check its diff_id at the end.

    The check runs when the caller's block ends without an error, after the
    rest of the stream has been read.
    """
    where = context or {}
    algorithm = _algorithm(diff_id)
    raw = io.BufferedReader(_HashingReader(blob, algorithm), CHUNK)
    compression = detect_compression(raw.peek(4)[:4])
    tar_hash = _HashingReader(decompressed_reader(raw, compression), algorithm)
    stream = io.BufferedReader(tar_hash, CHUNK)
    yield stream
    try:
        _drain(stream)
    except (EOFError, OSError, zlib.error, zstandard.ZstdError) as error:
        raise LayerError(f"layer blob is corrupt: {error}", **where) from None
    found = f"{algorithm}:{tar_hash.hexdigest()}"
    _check(found, diff_id, "diff_id (digest of the uncompressed tar)", where)
