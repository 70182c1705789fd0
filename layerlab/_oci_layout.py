"""Source: OCI image layouts, as a directory (``oci:DIR``) or a tar archive
(``oci-archive:FILE``), including multi-platform indexes.

The layout is described in the OCI image spec, image-layout.md: an
``oci-layout`` file, an ``index.json`` and content-addressed ``blobs/``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._errors import (
    DigestMismatchError,
    InvalidImageError,
    PlatformNotFoundError,
    ReferenceNotFoundError,
)
from ._platform import (
    Platform,
    check_config_platform,
    descriptor_platform,
    host_platform,
    names_variant,
    parse_platform,
    same_os_and_architecture,
)
from ._source import BlobStore, Descriptor, ImageSource, read_json

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
REF_NAME = "org.opencontainers.image.ref.name"


def blob_name(digest: str) -> str:
    """Return the path of a blob inside a layout, checking the digest's form."""
    algorithm, _, encoded = digest.partition(":")
    if not algorithm or not encoded or "/" in encoded or "/" in algorithm:
        raise InvalidImageError(f"invalid digest {digest!r}")
    return f"blobs/{algorithm}/{encoded}"


def read_blob_json(store: BlobStore, digest: str, *, what: str) -> Any:
    """Read a JSON blob and check its bytes against ``digest``."""
    data = store.read(blob_name(digest))
    verify_digest(data, digest, image=store.location, what=what)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidImageError(
            f"{what} {digest} is not valid JSON: {error}", image=store.location
        ) from None


def verify_digest(data: bytes, digest: str, *, image: str, what: str) -> None:
    """Raise DigestMismatchError unless ``data`` hashes to ``digest``."""
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise InvalidImageError(
            f"{what} uses unsupported digest algorithm {algorithm!r}", image=image
        )
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise DigestMismatchError(
            f"{what} has digest {algorithm}:{actual}, expected {digest}", image=image
        )


def open_layout(
    store: BlobStore,
    *,
    reference: str,
    name: str | None,
    platform: str | None,
    source_index: int | None = None,
) -> ImageSource:
    """Open one image of an OCI layout, chosen by ``name`` or
    ``source_index`` and by ``platform``.

    ``source_index`` is a position in ``index.json``'s ``manifests`` (the
    ``@N`` of ``oci:DIR:@N``). A requested platform is checked against the
    index entry's ``platform`` or, for an entry that names none, against the
    image config.
    """
    if not store.exists("index.json"):
        raise InvalidImageError(
            "no index.json: not an OCI image layout", image=reference
        )
    index = read_json(store, "index.json", what="index")
    manifests = _manifests(index, reference=reference, source_index=source_index)
    descriptor = _select(
        store, manifests, reference=reference, name=name, platform=platform
    )
    manifest = read_blob_json(store, descriptor["digest"], what="manifest")
    source = _source_from_manifest(store, manifest, reference=reference)
    if descriptor_platform(descriptor) is None:
        check_config_platform(source.config, platform, reference=reference)
    return source


def _source_from_manifest(
    store: BlobStore, manifest: dict[str, Any], *, reference: str
) -> ImageSource:
    try:
        config_descriptor = manifest["config"]
        layer_descriptors = manifest.get("layers") or []
    except (KeyError, TypeError):
        raise InvalidImageError("manifest has no config", image=reference) from None
    config = read_blob_json(store, config_descriptor["digest"], what="config")
    layers = [_descriptor(item, reference) for item in layer_descriptors]
    openers = [store.opener(blob_name(layer.digest or "")) for layer in layers]
    return ImageSource(
        reference=reference,
        config=config,
        config_digest=config_descriptor["digest"],
        layers=layers,
        openers=openers,
        manifest=manifest,
    )


def _descriptor(item: dict[str, Any], reference: str) -> Descriptor:
    try:
        return Descriptor(
            media_type=str(item.get("mediaType", "")),
            digest=str(item["digest"]),
            size=int(item["size"]),
            annotations=tuple(sorted((item.get("annotations") or {}).items())),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidImageError(
            f"invalid layer descriptor {item!r}", image=reference
        ) from None


def _manifests(
    index: Any, *, reference: str, source_index: int | None
) -> list[dict[str, Any]]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise InvalidImageError("index.json lists no manifests", image=reference)
    if source_index is None:
        return manifests
    if source_index >= len(manifests):
        raise ReferenceNotFoundError(
            f"source index @{source_index} is out of range: index.json lists "
            f"{len(manifests)} manifests (@0 to @{len(manifests) - 1})",
            image=reference,
        )
    return [manifests[source_index]]


def _select(
    store: BlobStore,
    manifests: list[dict[str, Any]],
    *,
    reference: str,
    name: str | None,
    platform: str | None,
) -> dict[str, Any]:
    if name is not None:
        named = [m for m in manifests if _ref_name(m) == name]
        if not named:
            raise ReferenceNotFoundError(
                f"no image named {name!r} in the layout; it contains "
                f"{_list_names(manifests)}",
                image=reference,
            )
        manifests = named

    # A layout may hold an index of platforms, or several manifests directly.
    candidates: list[dict[str, Any]] = []
    for item in manifests:
        if item.get("mediaType") in INDEX_TYPES:
            nested = read_blob_json(store, item["digest"], what="index")
            candidates.extend(nested.get("manifests") or [])
        else:
            candidates.append(item)
    return _pick_platform(candidates, reference=reference, platform=platform)


def _ref_name(item: dict[str, Any]) -> str | None:
    return (item.get("annotations") or {}).get(REF_NAME)


def _list_names(manifests: list[dict[str, Any]]) -> str:
    names = [
        f"{_ref_name(item) or '(no name)'} (@{position})"
        for position, item in enumerate(manifests)
    ]
    return ", ".join(names)


# buildx stores attestations as index entries of platform unknown/unknown.
_ATTESTATION = Platform("unknown", "unknown")


def _pick_platform(
    candidates: list[dict[str, Any]], *, reference: str, platform: str | None
) -> dict[str, Any]:
    images = [c for c in candidates if descriptor_platform(c) != _ATTESTATION]
    if len(images) == 1 and (platform is None or not images[0].get("platform")):
        # One image: a requested platform is checked against its config.
        return images[0]
    requested = parse_platform(platform) if platform else host_platform()
    offered = [(item, descriptor_platform(item)) for item in images]
    for item, found in offered:
        if found == requested:
            return item
    # A request without a variant takes any variant of its architecture, as
    # "linux/arm" takes an "arm/v6" entry.
    if platform is None or not names_variant(platform):
        for item, found in offered:
            if found is not None and same_os_and_architecture(requested, found):
                return item
    if platform is None and all(found is None for _, found in offered):
        names = ", ".join(_ref_name(item) or "(no name)" for item in images)
        raise InvalidImageError(
            f"the layout contains {len(images)} images ({names}); choose one "
            "with oci:DIR:NAME, or oci:DIR:@N for entry N of index.json",
            image=reference,
        )
    available = ", ".join(sorted({str(found or "unknown") for _, found in offered}))
    raise PlatformNotFoundError(
        f"no image for platform {requested}; available: {available} "
        "(choose one with --platform)",
        image=reference,
    )
