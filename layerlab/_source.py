"""The interface every image source implements, and the blob stores under it.

A source gives three things: the manifest (config and layer descriptors, in
layer order), the config bytes, and a way to open each blob as a byte stream.
Tables, history matching and size accounting are written once above it.

Blob openers are small picklable objects, so that layers can be read in
worker processes: each worker opens its own file handle.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from ._errors import InvalidImageError, ReferenceNotFoundError

MEDIA_TYPES_TAR = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
}


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: the media type, digest and size of one blob."""

    media_type: str
    digest: str | None
    size: int | None
    annotations: tuple[tuple[str, str], ...] = ()


class BlobOpener(Protocol):
    """Something that opens one blob's raw bytes; must be picklable."""

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True)
class FileRange:
    """A blob stored as a byte range of a file (a member of a tar archive)."""

    path: str
    offset: int
    size: int

    def open(self) -> BinaryIO:
        handle = open(self.path, "rb")
        handle.seek(self.offset)
        return _BoundedReader(handle, self.size)


class _BoundedReader(io.RawIOBase):
    """Read at most ``size`` bytes of ``handle`` from its current position."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: self._left]
        count = self._handle.readinto(view)  # type: ignore[attr-defined]
        self._left -= count
        return count

    def close(self) -> None:
        self._handle.close()
        super().close()


class BlobStore(Protocol):
    """Files of an image layout, addressed by their path inside it."""

    location: str

    def exists(self, name: str) -> bool: ...

    def read(self, name: str) -> bytes: ...

    def opener(self, name: str) -> BlobOpener: ...


class DirectoryStore:
    """An image layout unpacked in a directory."""

    def __init__(self, root: str) -> None:
        self.location = root
        self._root = os.path.realpath(root)

    def _path(self, name: str) -> str:
        path = os.path.realpath(os.path.join(self._root, name))
        if not path.startswith(self._root + os.sep):
            raise InvalidImageError(f"path {name!r} leaves the image layout")
        return path

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def read(self, name: str) -> bytes:
        try:
            with open(self._path(name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise InvalidImageError(
                f"{name} is missing from the image layout", image=self.location
            ) from None

    def opener(self, name: str) -> BlobOpener:
        path = self._path(name)
        if not os.path.isfile(path):
            raise InvalidImageError(
                f"blob {name} is missing from the image layout", image=self.location
            )
        return FileRange(path, 0, os.path.getsize(path))


class TarStore:
    """An image layout packed in an uncompressed tar archive.

    Only the headers are read to build the index; blobs are read later as
    byte ranges of the archive, so nothing is extracted.
    """

    def __init__(self, path: str, *, reference: str) -> None:
        self.location = reference
        self._path = path
        self._members = _index_tar(path, reference)

    def exists(self, name: str) -> bool:
        return _clean(name) in self._members

    def _member(self, name: str) -> tarfile.TarInfo:
        member = self._members.get(_clean(name))
        if member is None:
            raise InvalidImageError(
                f"{name} is missing from the archive", image=self.location
            )
        return member

    def read(self, name: str) -> bytes:
        with self.opener(name).open() as handle:
            return handle.read()

    def opener(self, name: str) -> BlobOpener:
        member = self._member(name)
        return FileRange(self._path, member.offset_data, member.size)


def _clean(name: str) -> str:
    return os.path.normpath(name.lstrip("/")).removeprefix("./")


def _index_tar(path: str, reference: str) -> dict[str, tarfile.TarInfo]:
    try:
        archive = tarfile.open(path, mode="r:")
    except FileNotFoundError:
        raise ReferenceNotFoundError(f"file {path} not found") from None
    except IsADirectoryError:
        raise InvalidImageError(
            "is a directory, not an archive; use oci:DIR for an image layout",
            image=reference,
        ) from None
    except tarfile.ReadError as error:
        raise InvalidImageError(
            f"not an uncompressed tar archive ({error}); "
            "decompress it first if it is a .tar.gz or .tar.zst",
            image=reference,
        ) from None
    members: dict[str, tarfile.TarInfo] = {}
    with archive:
        try:
            for member in archive:
                members[_clean(member.name)] = _resolve_link(member, members)
        except tarfile.TarError as error:
            raise InvalidImageError(
                f"archive is truncated or corrupt: {error}", image=reference
            ) from None
    return members


def _resolve_link(
    member: tarfile.TarInfo, members: dict[str, tarfile.TarInfo]
) -> tarfile.TarInfo:
    # docker save writes a layer shared by two images once and links the
    # second path to it, with a symlink (legacy layout) or a hardlink.
    if member.issym() or member.islnk():
        base = os.path.dirname(_clean(member.name)) if member.issym() else ""
        target = members.get(_clean(os.path.join(base, member.linkname)))
        if target is not None:
            return target
    return member


def read_json(store: BlobStore, name: str, *, what: str) -> Any:
    """Read and parse one JSON file of a store."""
    data = store.read(name)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidImageError(
            f"{what} {name} is not valid JSON: {error}", image=store.location
        ) from None


@dataclass
class ImageSource:
    """One image as a source gives it: manifest, config, and layer blobs."""

    reference: str
    config: dict[str, Any]
    config_digest: str | None
    layers: list[Descriptor]
    openers: list[BlobOpener]
    manifest: dict[str, Any]
    cleanup: Any = None

    def close(self) -> None:
        """Release what the source holds (a spooled engine export, for example)."""
        if self.cleanup is not None:
            self.cleanup()
            self.cleanup = None
