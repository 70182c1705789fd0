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

from ._errors import InvalidImageError
from ._oci_layout import open_layout, verify_digest
from ._source import Descriptor, ImageSource, TarStore, read_json

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
_BLOB_PATH = re.compile(r"^blobs/(sha256|sha512)/([0-9a-f]+)$")
_LEGACY_CONFIG = re.compile(r"^([0-9a-f]{64})\.json$")


def open_docker_archive(
    path: str, *, reference: str, name: str | None, platform: str | None
) -> ImageSource:
    """Open the image ``name`` selects (or the only one) in a docker-save archive."""
    store = TarStore(path, reference=reference)
    if not store.exists("manifest.json"):
        if store.exists("index.json"):
            return open_layout(store, reference=reference, name=name, platform=platform)
        raise InvalidImageError(
            "not an image archive: it has neither manifest.json (docker save) "
            "nor index.json (OCI layout)",
            image=reference,
        )
    entries = read_json(store, "manifest.json", what="manifest")
    entry = _select(entries, reference=reference, name=name)
    return _source(store, entry, reference=reference)


def _select(entries: Any, *, reference: str, name: str | None) -> dict[str, Any]:
    if not isinstance(entries, list) or not entries:
        raise InvalidImageError("manifest.json lists no images", image=reference)
    if name is None:
        if len(entries) == 1:
            return entries[0]
        tags = [tag for entry in entries for tag in entry.get("RepoTags") or []]
        raise InvalidImageError(
            f"the archive holds {len(entries)} images; choose one with "
            f"docker-archive:FILE:TAG (tags: {', '.join(tags) or 'none'})",
            image=reference,
        )
    for entry in entries:
        tags = entry.get("RepoTags") or []
        if name in tags or f"{name}:latest" in tags:
            return entry
    raise InvalidImageError(f"no image tagged {name!r} in the archive", image=reference)


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
