"""Source: OCI image layouts, as a directory (``oci:DIR``) or a tar archive
(``oci-archive:FILE``), including multi-platform indexes.

The layout is described in the OCI image spec, image-layout.md: an
``oci-layout`` file, an ``index.json`` and content-addressed ``blobs/``.
"""

from __future__ import annotations

import hashlib
import json
import platform as platform_module
from typing import Any

from ._errors import DigestMismatchError, InvalidImageError, PlatformNotFoundError
from ._source import BlobStore, Descriptor, ImageSource, read_json

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
REF_NAME = "org.opencontainers.image.ref.name"


def host_platform() -> str:
    """Return this machine's platform as ``os/architecture[/variant]``."""
    machine = platform_module.machine().lower()
    architecture = {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "arm/v7",
        "armv6l": "arm/v6",
        "i686": "386",
        "i386": "386",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }.get(machine, machine)
    return f"linux/{architecture}"


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
    store: BlobStore, *, reference: str, name: str | None, platform: str | None
) -> ImageSource:
    """Open the image that ``name`` and ``platform`` select in an OCI layout."""
    if not store.exists("index.json"):
        raise InvalidImageError(
            "no index.json: not an OCI image layout", image=reference
        )
    index = read_json(store, "index.json", what="index")
    descriptor = _select(
        store, index, reference=reference, name=name, platform=platform
    )
    manifest = read_blob_json(store, descriptor["digest"], what="manifest")
    return _source_from_manifest(store, manifest, reference=reference)


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


def _select(
    store: BlobStore,
    index: dict[str, Any],
    *,
    reference: str,
    name: str | None,
    platform: str | None,
) -> dict[str, Any]:
    manifests = list(index.get("manifests") or [])
    if name is not None:
        manifests = [m for m in manifests if _ref_name(m) == name]
        if not manifests:
            raise InvalidImageError(
                f"no image named {name!r} in the layout", image=reference
            )
    if not manifests:
        raise InvalidImageError("index.json lists no manifests", image=reference)

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


def _platform_of(item: dict[str, Any]) -> str | None:
    described = item.get("platform")
    if not described:
        return None
    text = f"{described.get('os', '')}/{described.get('architecture', '')}"
    if described.get("variant"):
        text += f"/{described['variant']}"
    return text


def _pick_platform(
    candidates: list[dict[str, Any]], *, reference: str, platform: str | None
) -> dict[str, Any]:
    # Attestation manifests (buildx) carry platform unknown/unknown.
    images = [c for c in candidates if _platform_of(c) != "unknown/unknown"]
    if platform is None and len(images) == 1:
        return images[0]
    wanted = platform or host_platform()
    for item in images:
        found = _platform_of(item)
        if found == wanted or (found and found.startswith(wanted + "/")):
            return item
    if platform is None and all(_platform_of(c) is None for c in images):
        raise InvalidImageError(
            f"the layout holds {len(images)} images; choose one with oci:DIR:NAME",
            image=reference,
        )
    available = ", ".join(sorted({_platform_of(c) or "?" for c in images}))
    raise PlatformNotFoundError(
        f"no image for platform {wanted}; available: {available} "
        "(choose one with --platform)",
        image=reference,
    )
