"""Source: archives written by ``docker save`` (``docker-archive:FILE``).

Two layouts exist. The legacy one (Docker before 25) has ``manifest.json``,
``<config-hex>.json`` and ``<id>/layer.tar`` per layer. Docker 25 and later
write an OCI image layout that also carries ``manifest.json``, whose paths
then point into ``blobs/sha256/``. Both are read through ``manifest.json``;
an archive with only ``index.json`` is read as an OCI layout.
"""

from __future__ import annotations

import re
from typing import Any

from ._errors import InvalidImageError, InvalidReferenceError, ReferenceNotFoundError
from ._oci_layout import open_layout, verify_digest
from ._platform import check_config_platform
from ._source import Descriptor, ImageSource, TarStore, read_json

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
_BLOB_PATH = re.compile(r"^blobs/(sha256|sha512)/([0-9a-f]+)$")
_LEGACY_CONFIG = re.compile(r"^([0-9a-f]{64})\.json$")


def open_docker_archive(
    path: str,
    *,
    reference: str,
    name: str | None,
    platform: str | None,
    source_index: int | None = None,
) -> ImageSource:
    """Open one image of a docker-save archive.

    ``name`` (a tag such as ``app:1``) or ``source_index`` (the ``@N`` of
    ``docker-archive:FILE:@N``, a position in ``manifest.json``) selects the
    image. Without either, the archive must contain exactly one. A requested
    ``platform`` is checked against the image config.
    """
    store = TarStore(path, reference=reference)
    if not store.exists("manifest.json"):
        if store.exists("index.json"):
            return open_layout(
                store,
                reference=reference,
                name=name,
                platform=platform,
                source_index=source_index,
            )
        raise InvalidImageError(
            "not an image archive: it has neither manifest.json (docker save) "
            "nor index.json (OCI layout)",
            image=reference,
        )
    entries = read_json(store, "manifest.json", what="manifest")
    if not isinstance(entries, list) or not entries:
        raise InvalidImageError("manifest.json lists no images", image=reference)
    entry = _select(
        entries, reference=reference, path=path, name=name, source_index=source_index
    )
    source = _source(store, entry, reference=reference)
    check_config_platform(source.config, platform, reference=reference)
    return source


def _select(
    entries: list[Any],
    *,
    reference: str,
    path: str,
    name: str | None,
    source_index: int | None,
) -> dict[str, Any]:
    if source_index is not None:
        if source_index >= len(entries):
            raise ReferenceNotFoundError(
                f"source index @{source_index} is out of range: archive {path} "
                f"contains {_list_images(entries)}",
                image=reference,
            )
        return entries[source_index]
    if name is None:
        if len(entries) == 1:
            return entries[0]
        raise InvalidImageError(
            f"archive {path} contains {_list_images(entries)}; choose one with "
            "docker-archive:FILE:NAME[:TAG] or docker-archive:FILE:@N",
            image=reference,
        )
    expected = normalize_reference(name, reference=reference)
    for entry in entries:
        for tag in _repo_tags(entry):
            if _normalized_or_none(tag) == expected:
                return entry
    raise ReferenceNotFoundError(
        f"no image tagged {name} in archive {path}; it contains "
        f"{_list_images(entries)}",
        image=reference,
    )


def _repo_tags(entry: Any) -> list[str]:
    tags = entry.get("RepoTags") if isinstance(entry, dict) else None
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def _list_images(entries: list[Any]) -> str:
    described = [
        f"@{position} ({', '.join(_repo_tags(entry)) or 'no tag'})"
        for position, entry in enumerate(entries)
    ]
    count = f"{len(entries)} image" + ("" if len(entries) == 1 else "s")
    return f"{count}: {', '.join(described)}"


# The grammar of docker references, as in containers/image's
# docker/reference/regexp.go (IPv6 registry addresses left out).
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
)
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
)


def normalize_reference(text: str, *, reference: str) -> str:
    """Return ``text`` as a full ``domain/path:tag`` docker reference.

    The rules are those of ``docker pull`` (``ParseNormalizedNamed`` in
    containers/image's docker/reference/normalize.go), so ``app`` is
    ``docker.io/library/app:latest`` and ``team/app:1`` is
    ``docker.io/team/app:1``. skopeo compares ``docker-archive:FILE:NAME``
    with an archive's ``RepoTags`` in this form.
    """
    if "@" in text:
        raise InvalidReferenceError(
            f"{text!r} contains a digest, but an archive's images are found by "
            "tag; use NAME:TAG, or @N for the N-th image of manifest.json",
            image=reference,
        )
    normalized = _normalized_or_none(text)
    if normalized is None:
        raise InvalidReferenceError(
            f"{text!r} is not a valid image reference: expected NAME[:TAG] with "
            "a lowercase NAME, or @N",
            image=reference,
        )
    return normalized


def is_docker_reference(text: str) -> bool:
    """Return True when ``text`` is a valid ``NAME[:TAG][@DIGEST]`` docker
    reference."""
    name, at, digest = text.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return False
    return _normalized_or_none(name) is not None


def _normalized_or_none(text: str) -> str | None:
    name, tag = text, "latest"
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        name, tag = text[:colon], text[colon + 1 :]
    domain, slash, remainder = name.partition("/")
    if not slash or not ("." in domain or ":" in domain or domain == "localhost"):
        domain, remainder = "docker.io", name
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    valid = (
        _DOMAIN.fullmatch(domain)
        and all(_PATH_COMPONENT.fullmatch(part) for part in remainder.split("/"))
        and _TAG.fullmatch(tag)
    )
    return f"{domain}/{remainder}:{tag}" if valid else None


def _source(store: TarStore, entry: dict[str, Any], *, reference: str) -> ImageSource:
    try:
        config_name = str(entry["Config"])
        layer_names = [str(name) for name in entry.get("Layers") or []]
    except (KeyError, TypeError):
        raise InvalidImageError(
            "manifest.json entry has no Config", image=reference
        ) from None

    config_bytes = store.read(config_name)
    config_digest = _digest_from_name(config_name)
    if config_digest is not None:
        verify_digest(config_bytes, config_digest, image=reference, what="config")
    config = read_json(store, config_name, what="config")

    layers = [
        Descriptor(
            media_type=DOCKER_LAYER,
            digest=_digest_from_name(name, config=False),
            size=None,
        )
        for name in layer_names
    ]
    return ImageSource(
        reference=reference,
        config=config,
        config_digest=config_digest,
        layers=layers,
        openers=[store.opener(name) for name in layer_names],
        manifest=entry,
    )


def _digest_from_name(name: str, *, config: bool = True) -> str | None:
    match = _BLOB_PATH.match(name)
    if match:
        return f"{match.group(1)}:{match.group(2)}"
    legacy = _LEGACY_CONFIG.match(name) if config else None
    if legacy:
        return f"sha256:{legacy.group(1)}"
    return None
