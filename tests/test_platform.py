"""Platforms: containerd's normal form, index matching, single-image checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from handmade import Layer, file, oci_layout_files, write_docker_archive

import layerlab
from layerlab import _platform
from layerlab._platform import Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/x86-64", Platform("linux", "amd64")),
        ("linux/amd64/v1", Platform("linux", "amd64")),
        ("linux/amd64/v3", Platform("linux", "amd64", "v3")),
        ("linux/arm64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/arm64/8", Platform("linux", "arm64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("linux/arm", Platform("linux", "arm", "v7")),
        ("linux/arm/7", Platform("linux", "arm", "v7")),
        ("linux/arm/v6", Platform("linux", "arm", "v6")),
        ("linux/armhf", Platform("linux", "arm", "v7")),
        ("linux/armel", Platform("linux", "arm", "v6")),
        ("linux/i386", Platform("linux", "386")),
        ("Linux/AMD64", Platform("linux", "amd64")),
        ("macos/arm64", Platform("darwin", "arm64")),
        ("arm64", Platform("linux", "arm64")),
        ("linux/s390x", Platform("linux", "s390x")),
    ],
)
def test_platform_normal_form(text: str, expected: Platform) -> None:
    assert _platform.parse_platform(text) == expected


def test_lone_os_takes_host_architecture() -> None:
    host = _platform.host_platform()
    assert _platform.parse_platform("linux") == host


@pytest.mark.parametrize("text", ["", "linux/", "/amd64", "a/b/c/d", "linux//v7"])
def test_malformed_platform_rejected(text: str) -> None:
    with pytest.raises(layerlab.OptionError, match="invalid platform"):
        _platform.parse_platform(text)


# GOOS and GOARCH values of Go's ports, which OCI platforms use.
GO_ARCHITECTURES = [
    "386",
    "amd64",
    "arm",
    "arm64",
    "loong64",
    "mips",
    "mips64",
    "mips64le",
    "mipsle",
    "ppc64",
    "ppc64le",
    "riscv64",
    "s390x",
    "wasm",
]
GO_OPERATING_SYSTEMS = [
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
]


@pytest.mark.parametrize("architecture", GO_ARCHITECTURES)
def test_go_architectures_accepted(architecture: str) -> None:
    assert _platform.parse_platform(f"linux/{architecture}").architecture == (
        architecture
    )


@pytest.mark.parametrize("os_name", GO_OPERATING_SYSTEMS)
def test_go_operating_systems_accepted(os_name: str) -> None:
    assert _platform.parse_platform(f"{os_name}/amd64").os == os_name


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("bogus", "unknown architecture 'bogus'"),
        ("linux/bogus", "unknown architecture 'bogus'"),
        ("linux/amd65", "unknown architecture 'amd65'"),
        ("bogus/amd64", "unknown operating system 'bogus'"),
        ("arm64/v8", "unknown operating system 'arm64'"),
        ("linux/arm64/v8!", "invalid variant 'v8!'"),
    ],
)
def test_unknown_platform_rejected(text: str, problem: str) -> None:
    with pytest.raises(layerlab.OptionError) as caught:
        _platform.parse_platform(text)
    message = str(caught.value)
    assert f"invalid platform {text!r}: {problem}" in message
    assert "os/architecture[/variant]" in message
    assert "linux/amd64" in message
    assert "linux/arm64/v8" in message


def test_unknown_architecture_lists_known_ones() -> None:
    with pytest.raises(layerlab.OptionError) as caught:
        _platform.parse_platform("linux/bogus")
    assert "386, amd64, amd64p32, arm, arm64" in str(caught.value)


def test_malformed_platform_fails_before_reading(tmp_path: Path) -> None:
    path = write_docker_archive(tmp_path / "i.tar", [Layer([file("a")])])
    with pytest.raises(layerlab.OptionError, match="linux/"):
        layerlab.open_image(str(path), platform="linux/")


# Hand-made layouts: an index of platforms, or one image with its config.


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_platform_layout(
    root: Path,
    images: list[tuple[dict[str, str], dict[str, str] | None]],
) -> Path:
    """Write a layout with one image per ``(config_platform, index_platform)``.

    Each image has one file, ``arch``, whose size is its position plus one,
    so a test can tell which image was read. ``config_platform`` sets the
    config's os, architecture and variant; ``index_platform`` is the index
    entry's ``platform``, or None for an entry without one.
    """
    entries = []
    for position, (config_platform, index_platform) in enumerate(images):
        files = oci_layout_files([Layer([file("arch", b"x" * (position + 1))])])
        descriptor = json.loads(files.pop("index.json"))["manifests"][0]
        manifest_name = "blobs/sha256/" + descriptor["digest"].split(":")[1]
        manifest = json.loads(files.pop(manifest_name))
        config_name = "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]
        config = json.loads(files.pop(config_name))
        config.pop("variant", None)
        config.update(config_platform)

        config_bytes = _json_bytes(config)
        manifest["config"]["digest"] = _digest(config_bytes)
        manifest["config"]["size"] = len(config_bytes)
        manifest_bytes = _json_bytes(manifest)
        files["blobs/sha256/" + _digest(config_bytes)[7:]] = config_bytes
        files["blobs/sha256/" + _digest(manifest_bytes)[7:]] = manifest_bytes
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)

        entry = {
            "mediaType": descriptor["mediaType"],
            "digest": _digest(manifest_bytes),
            "size": len(manifest_bytes),
        }
        if index_platform is not None:
            entry["platform"] = index_platform
        entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (root / "index.json").write_bytes(_json_bytes(index))
    return root


def arch_size(image: layerlab.Image) -> int:
    return int(image.filesystem.set_index("path").loc["arch", "size"])


def _linux(architecture: str, variant: str = "") -> dict[str, str]:
    described = {"os": "linux", "architecture": architecture}
    if variant:
        described["variant"] = variant
    return described


@pytest.fixture
def index_layout(tmp_path: Path) -> Path:
    """An index of linux/amd64 (1), linux/arm64 without variant (2) and
    linux/arm/v6 (3)."""
    return write_platform_layout(
        tmp_path / "index",
        [
            (_linux("amd64"), _linux("amd64")),
            (_linux("arm64", "v8"), _linux("arm64")),
            (_linux("arm", "v6"), _linux("arm", "v6")),
        ],
    )


@pytest.mark.parametrize(
    ("platform", "size"),
    [
        ("linux/amd64", 1),
        ("linux/x86_64", 1),
        ("linux/arm64", 2),
        ("linux/arm64/v8", 2),
        ("linux/aarch64", 2),
        ("linux/arm/v6", 3),
        ("linux/armel", 3),
        # No variant requested: the only arm entry is taken, whatever its variant.
        ("linux/arm", 3),
    ],
)
def test_index_platform_normalised(
    index_layout: Path, platform: str, size: int
) -> None:
    with layerlab.open_image(f"oci:{index_layout}", platform=platform) as image:
        assert arch_size(image) == size


@pytest.mark.parametrize("platform", ["linux/arm/v7", "linux/armhf", "linux/s390x"])
def test_index_platform_missing(index_layout: Path, platform: str) -> None:
    with pytest.raises(layerlab.PlatformNotFoundError) as caught:
        layerlab.open_image(f"oci:{index_layout}", platform=platform)
    message = str(caught.value)
    assert str(_platform.parse_platform(platform)) in message
    assert "linux/amd64, linux/arm/v6, linux/arm64" in message


def test_index_entry_with_v8_matches_plain_arm64(tmp_path: Path) -> None:
    root = write_platform_layout(
        tmp_path / "v8",
        [
            (_linux("amd64"), _linux("amd64")),
            (_linux("arm64", "v8"), _linux("arm64", "v8")),
        ],
    )
    for platform in ("linux/arm64", "linux/arm64/v8", "linux/aarch64"):
        with layerlab.open_image(f"oci:{root}", platform=platform) as image:
            assert arch_size(image) == 2, platform


def test_single_manifest_layout_checks_config(tmp_path: Path) -> None:
    root = write_platform_layout(tmp_path / "one", [(_linux("arm64"), None)])
    for platform in ("linux/arm64", "linux/arm64/v8", "linux/aarch64", "arm64"):
        with layerlab.open_image(f"oci:{root}", platform=platform) as image:
            assert arch_size(image) == 1, platform
    with pytest.raises(layerlab.PlatformNotFoundError) as caught:
        layerlab.open_image(f"oci:{root}", platform="linux/amd64")
    message = str(caught.value)
    assert "requested platform is linux/amd64" in message
    assert "image is for linux/arm64" in message
    # Without a platform the image is read, whatever this machine is.
    with layerlab.open_image(f"oci:{root}") as image:
        assert arch_size(image) == 1


def test_single_entry_with_platform_checks_entry(tmp_path: Path) -> None:
    root = write_platform_layout(tmp_path / "one", [(_linux("arm64"), _linux("arm64"))])
    with pytest.raises(layerlab.PlatformNotFoundError, match="available: linux/arm64"):
        layerlab.open_image(f"oci:{root}", platform="linux/amd64")


def test_config_variant_compared_when_present(tmp_path: Path) -> None:
    stated = write_platform_layout(tmp_path / "v7", [(_linux("arm", "v7"), None)])
    unstated = write_platform_layout(tmp_path / "none", [(_linux("arm"), None)])
    with pytest.raises(layerlab.PlatformNotFoundError, match="linux/arm/v7"):
        layerlab.open_image(f"oci:{stated}", platform="linux/arm/v6")
    # A config without a variant matches any variant of its architecture.
    with layerlab.open_image(f"oci:{unstated}", platform="linux/arm/v6") as image:
        assert arch_size(image) == 1


def test_config_without_platform_fields(tmp_path: Path) -> None:
    root = write_platform_layout(
        tmp_path / "bare", [({"os": "", "architecture": ""}, None)]
    )
    with pytest.raises(layerlab.PlatformNotFoundError, match="names no os"):
        layerlab.open_image(f"oci:{root}", platform="linux/amd64")


def test_docker_archive_checks_config(tmp_path: Path) -> None:
    # handmade configs state linux/amd64.
    path = write_docker_archive(tmp_path / "i.tar", [Layer([file("a", b"1")])])
    with layerlab.open_image(f"docker-archive:{path}", platform="linux/x86_64"):
        pass
    with pytest.raises(layerlab.PlatformNotFoundError) as caught:
        layerlab.open_image(f"docker-archive:{path}", platform="linux/arm64/v8")
    message = str(caught.value)
    assert "requested platform is linux/arm64" in message
    assert "image is for linux/amd64" in message
    assert caught.value.image == f"docker-archive:{path}"


# Images built by the engine: its docker archive, a skopeo OCI archive and
# the engine itself report one platform each.

_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def _engine_platform(client: Any, tag: str) -> tuple[str, str]:
    attributes = client.images.get(tag).attrs
    architecture = attributes["Architecture"]
    return f"{attributes['Os']}/{architecture}", architecture


@pytest.mark.engine
@pytest.mark.parametrize("source", ["engine", "docker-archive", "oci-gzip"])
def test_engine_image_platform_checked(
    docker_client: Any, test_image: Any, source: str
) -> None:
    built = test_image("symlinks")
    reference = built.references[source]
    actual, architecture = _engine_platform(docker_client, built.tag)
    other = "linux/s390x" if architecture != "s390x" else "linux/amd64"

    with pytest.raises(layerlab.PlatformNotFoundError) as caught:
        layerlab.open_image(reference, platform=other, cache=False)
    message = str(caught.value)
    assert f"requested platform is {other}" in message
    assert f"image is for {actual}" in message

    alias = _ALIASES.get(architecture, architecture)
    with layerlab.open_image(reference, platform=f"linux/{alias}") as image:
        assert len(image.layers) == len(built_layers(docker_client, built.tag))


def built_layers(client: Any, tag: str) -> list[str]:
    return client.images.get(tag).attrs["RootFS"]["Layers"]
