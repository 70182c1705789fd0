"""Parse image references and open the source each one names.

The transports are those skopeo and podman users know: ``docker-archive:``,
``oci-archive:``, ``oci:`` and ``docker-daemon:``. A plain path is read by
what it contains; a bare name that is not a path goes to the engine.

After ``docker-archive:``, ``oci-archive:`` and ``oci:`` comes a path and
optionally ``:NAME`` or ``:@N`` to choose one image. skopeo cuts the path at
the first colon. Here the longest prefix that exists on disk is the path, so
a path may itself contain colons. A plain path takes the same selectors.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import zstandard

from ._daemon import connect, open_daemon_image
from ._docker_archive import is_docker_reference, open_docker_archive
from ._errors import (
    EngineError,
    InvalidImageError,
    InvalidReferenceError,
    LayerlabError,
    ReferenceNotFoundError,
)
from ._layer import CHUNK, decompressed_reader, detect_compression
from ._oci_layout import open_layout
from ._platform import parse_platform
from ._source import BlobStore, DirectoryStore, ImageSource, TarStore

logger = logging.getLogger(__name__)

TRANSPORTS = ("docker-archive", "oci-archive", "oci", "docker-daemon")
TRANSPORT_FORMS = (
    "docker-archive:FILE, oci-archive:FILE, oci:DIR, docker-daemon:NAME[:TAG]"
)

# "docker" is listed for "docker://", which parse_reference rejects by name.
_SUGGESTED = (*TRANSPORTS, "docker")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference.

    ``name`` or ``source_index`` (the ``@N`` form) selects one image of an
    archive or layout. ``inferred`` is true when the text named no transport.
    """

    transport: str
    location: str
    name: str | None = None
    source_index: int | None = None
    inferred: bool = False

    def __str__(self) -> str:
        text = f"{self.transport}:{self.location}"
        if self.source_index is not None:
            return f"{text}:@{self.source_index}"
        return f"{text}:{self.name}" if self.name else text


def parse_reference(text: str) -> Reference:
    """Parse ``text`` into a transport, a location and an optional selector."""
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
        return Reference(_guess_transport(text), text, inferred=True)
    selected = _selected_image_file(text)
    if selected is not None:
        return selected
    suggestion = suggest_transport(text)
    if suggestion is not None and _names_a_file(text):
        raise InvalidReferenceError(_unknown_transport(text, suggestion))
    if ":@" in text:
        # No engine image name contains ":@", so the text names a missing file.
        raise ReferenceNotFoundError(f"file {text.rpartition(':@')[0]} not found")
    if os.sep in text and not _looks_like_name(text) or text.endswith(".tar"):
        raise ReferenceNotFoundError(f"file {text} not found")
    return Reference("docker-daemon", text, inferred=True)


def suggest_transport(text: str) -> str | None:
    """Return the transport that the text before the first colon is a typo of.

    Text that contains ``/`` or ``.`` before the colon is a registry host
    (``registry.example:5000/app``), so it gets no suggestion.
    """
    prefix, colon, _ = text.partition(":")
    if not colon or not prefix or prefix in _SUGGESTED:
        return None
    if "/" in prefix or "." in prefix:
        return None
    # One wrong letter of the three in "oci" scores 0.67; a longer transport
    # keeps a higher bar, so that image names such as "cockroach" (0.61 to
    # "docker-archive") get no suggestion.
    cutoff = 0.6 if len(prefix) <= 3 else 0.75
    close = difflib.get_close_matches(prefix.lower(), _SUGGESTED, n=1, cutoff=cutoff)
    return close[0] if close else None


def _selected_image_file(text: str) -> Reference | None:
    """Return the reference for ``PATH:@N`` or ``PATH:NAME`` without a transport.

    Returns None when no prefix before a colon is a path that may hold images.
    """
    for path, selector in path_candidates(text):
        if selector is not None and _may_hold_image(path, selector):
            reference = Reference(_guess_transport(path), path, inferred=True)
            return _with_selector(reference, selector)
    return None


def _may_hold_image(path: str, selector: str) -> bool:
    # No engine image name contains ":@". A NAME selector takes a file or an
    # OCI layout only, so that "nginx:latest" beside a directory "nginx"
    # still names an engine image.
    if selector.startswith("@"):
        return os.path.exists(path)
    return os.path.isfile(path) or os.path.isfile(os.path.join(path, "index.json"))


def _names_a_file(text: str) -> bool:
    # Text that cannot be an image name is certainly a mistyped transport.
    # Otherwise "dockerd:1" may be an image, which the engine then decides.
    _, _, rest = text.partition(":")
    return (
        os.path.exists(rest) or rest.endswith(".tar") or not is_docker_reference(text)
    )


def _unknown_transport(text: str, suggestion: str) -> str:
    prefix = text.partition(":")[0]
    written = "docker://" if suggestion == "docker" else f"{suggestion}:"
    return (
        f"unknown transport {prefix + ':'!r} in {text!r}; did you mean "
        f"{written!r}? The transports are {TRANSPORT_FORMS}"
    )


def _split_path(transport: str, rest: str) -> Reference:
    candidates = list(path_candidates(rest))
    for path, selector in candidates:
        if os.path.exists(path):
            return _with_selector(Reference(transport, path), selector)
    if len(candidates) == 1:
        raise ReferenceNotFoundError(f"file {rest} not found")
    tried = ", ".join(repr(path) for path, _ in candidates)
    raise ReferenceNotFoundError(
        f"file not found: none of {tried} exists (a path ends at a colon "
        "followed by NAME or @N)"
    )


def path_candidates(rest: str) -> Iterator[tuple[str, str | None]]:
    """Yield each way to split ``rest`` into a path and a selector.

    The whole text comes first, with no selector, then each prefix that ends
    before a colon, longest first, with the text after that colon.
    """
    yield rest, None
    end = rest.rfind(":")
    while end > 0:
        yield rest[:end], rest[end + 1 :]
        end = rest.rfind(":", 0, end)


def _with_selector(reference: Reference, selector: str | None) -> Reference:
    if not selector:
        return reference
    if not selector.startswith("@"):
        return dataclasses.replace(reference, name=selector)
    digits = selector[1:]
    if not digits.isascii() or not digits.isdigit():
        raise InvalidReferenceError(
            f"invalid source index {selector!r}: expected @N, where N is the "
            "0-based position of the image in the archive's manifest"
        )
    return dataclasses.replace(reference, source_index=int(digits))


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
    if platform is not None:
        parse_platform(platform)  # a malformed platform fails before any I/O
    reference = parse_reference(text)
    if reference.transport == "docker-daemon":
        if not reference.location:
            raise InvalidReferenceError("docker-daemon: needs an image name")
        if reference.inferred:
            return _open_bare_name(text, platform=platform)
        return open_daemon_image(reference.location, reference=text, platform=platform)
    if not os.path.exists(reference.location):
        raise ReferenceNotFoundError(f"{reference.location} not found", image=text)
    return _open_path(reference, label=text, platform=platform)


def _open_path(
    reference: Reference, *, label: str, platform: str | None
) -> ImageSource:
    location = reference.location
    if os.path.isfile(location):
        spool = _inflated_copy(location, label=label)
        if spool is not None:
            return _open_spooled(reference, spool, label=label, platform=platform)
    if reference.transport == "docker-archive":
        return open_docker_archive(
            location,
            reference=label,
            name=reference.name,
            source_index=reference.source_index,
            platform=platform,
        )
    store: BlobStore
    if reference.transport == "oci":
        if not os.path.isdir(location):
            raise InvalidReferenceError(
                f"oci: needs a directory; use oci-archive:{location} for an archive",
                image=label,
            )
        store = DirectoryStore(location)
    else:
        store = TarStore(location, reference=label)
    return open_layout(
        store,
        reference=label,
        name=reference.name,
        source_index=reference.source_index,
        platform=platform,
    )


def _inflated_copy(path: str, *, label: str) -> str | None:
    """Inflate a gzip or zstd compressed archive into a temporary file.

    Returns the temporary file's path, or None when ``path`` is not
    compressed. ``docker save img | gzip`` makes such archives; their blobs
    can only be read by offset once the archive is inflated.
    """
    with open(path, "rb") as handle:
        compression = detect_compression(handle.read(4))
    if compression == "none":
        return None
    logger.info("%s: inflating the %s archive to a temporary file", label, compression)
    handle, spool = tempfile.mkstemp(prefix="layerlab-", suffix=".tar")
    try:
        with os.fdopen(handle, "wb") as target, open(path, "rb") as compressed:
            raw = io.BufferedReader(compressed, CHUNK)  # type: ignore[arg-type]
            shutil.copyfileobj(decompressed_reader(raw, compression), target, CHUNK)
    except (zlib.error, EOFError, zstandard.ZstdError) as error:
        os.unlink(spool)
        raise InvalidImageError(
            f"the {compression} compressed archive is damaged: {error}", image=label
        ) from None
    except BaseException:
        os.unlink(spool)
        raise
    return spool


def _open_spooled(
    reference: Reference, spool: str, *, label: str, platform: str | None
) -> ImageSource:
    def remove() -> None:
        os.unlink(spool)

    try:
        inner = dataclasses.replace(reference, location=spool)
        if reference.inferred:
            inner = dataclasses.replace(inner, transport=_guess_transport(spool))
        source = _open_path(inner, label=label, platform=platform)
    except BaseException:
        remove()
        raise
    source.cleanup = _both(source.cleanup, remove)
    return source


def _both(
    first: Callable[[], None] | None, second: Callable[[], None]
) -> Callable[[], None]:
    def run() -> None:
        try:
            if first is not None:
                first()
        finally:
            second()

    return run


def _open_bare_name(text: str, *, platform: str | None) -> ImageSource:
    suggestion = suggest_transport(text)
    try:
        client = connect()
    except EngineError as error:
        detail = str(error)
        problem = (
            f"{text!r} is neither a file nor reachable through the engine. "
            f"{detail[:1].upper()}{detail[1:]}"
        )
        raise _unresolved(EngineError, problem, text, suggestion) from None
    try:
        return open_daemon_image(text, reference=text, platform=platform, client=client)
    except ReferenceNotFoundError:
        problem = f"{text!r} is neither a file nor an image in the Docker Engine"
        raise _unresolved(ReferenceNotFoundError, problem, text, suggestion) from None


def _unresolved(
    error_class: type[LayerlabError],
    problem: str,
    text: str,
    suggestion: str | None,
) -> LayerlabError:
    if suggestion is not None:
        return InvalidReferenceError(
            f"{problem}. Also, {_unknown_transport(text, suggestion)}"
        )
    return error_class(
        f"{problem}. To name a file or an engine image, use one of the "
        f"transports {TRANSPORT_FORMS}"
    )
