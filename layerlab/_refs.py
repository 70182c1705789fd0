"""Parse image references and open the source each one names.

The transports are those skopeo and podman users know: ``docker-archive:``,
``oci-archive:``, ``oci:`` and ``docker-daemon:``. A plain path is read by
what it contains; a bare name that is not a path goes to the engine.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass

from ._daemon import open_daemon_image
from ._docker_archive import open_docker_archive
from ._errors import InvalidReferenceError, ReferenceNotFoundError
from ._oci_layout import open_layout
from ._source import DirectoryStore, ImageSource, TarStore

TRANSPORTS = ("docker-archive", "oci-archive", "oci", "docker-daemon")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference."""

    transport: str
    location: str
    name: str | None = None

    def __str__(self) -> str:
        text = f"{self.transport}:{self.location}"
        return f"{text}:{self.name}" if self.name else text


def parse_reference(text: str) -> Reference:
    """Parse ``text`` into a transport, a location and an optional image name."""
    if not text:
        raise InvalidReferenceError("empty image reference")
    transport, colon, rest = text.partition(":")
    if colon and transport in TRANSPORTS:
        if transport == "docker-daemon":
            return Reference(transport, rest)
        return _split_path(transport, rest)
    if colon and transport == "docker" and rest.startswith("//"):
        raise InvalidReferenceError(
            f"registry references ({text}) are not supported yet; "
            "pull the image and use docker-daemon:NAME, or save it with "
            "skopeo copy to an oci-archive:FILE"
        )
    if os.path.exists(text):
        return Reference(_guess_transport(text), text)
    if os.sep in text and not _looks_like_name(text) or text.endswith(".tar"):
        raise ReferenceNotFoundError(f"file {text} not found")
    return Reference("docker-daemon", text)


def _split_path(transport: str, rest: str) -> Reference:
    # FILE:NAME is ambiguous when the path itself contains a colon, so an
    # existing path wins.
    if os.path.exists(rest) or ":" not in rest:
        return Reference(transport, rest)
    path, _, name = rest.rpartition(":")
    return Reference(transport, path, name or None)


def _looks_like_name(text: str) -> bool:
    # registry.example/team/app:1 has slashes but no path on disk.
    return not text.startswith((".", "/", "~"))


def _guess_transport(path: str) -> str:
    if os.path.isdir(path):
        return "oci"
    names = set()
    try:
        with tarfile.open(path, mode="r:") as archive:
            for member in archive:
                names.add(member.name.removeprefix("./"))
    except (tarfile.TarError, OSError):
        pass
    # docker save writes manifest.json, also beside an OCI layout (Docker 25+).
    if "index.json" in names and "manifest.json" not in names:
        return "oci-archive"
    return "docker-archive"


def open_source(text: str, *, platform: str | None = None) -> ImageSource:
    """Open the image source that the reference ``text`` names."""
    reference = parse_reference(text)
    label = text
    if reference.transport == "docker-daemon":
        if not reference.location:
            raise InvalidReferenceError("docker-daemon: needs an image name")
        return open_daemon_image(reference.location, reference=label)
    if not os.path.exists(reference.location):
        raise ReferenceNotFoundError(f"{reference.location} not found", image=label)
    if reference.transport == "oci":
        if not os.path.isdir(reference.location):
            raise InvalidReferenceError(
                f"oci: needs a directory; use oci-archive:{reference.location} "
                "for an archive",
                image=label,
            )
        store = DirectoryStore(reference.location)
        return open_layout(
            store, reference=label, name=reference.name, platform=platform
        )
    if reference.transport == "oci-archive":
        store = TarStore(reference.location, reference=label)
        return open_layout(
            store, reference=label, name=reference.name, platform=platform
        )
    return open_docker_archive(
        reference.location, reference=label, name=reference.name, platform=platform
    )
