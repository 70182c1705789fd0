"""Image references: paths with colons, NAME and @N selectors, typos.

The selection rules follow skopeo's ``docker-archive:path[:{docker-reference|
@source-index}]`` (containers-transports(5)); the engine tests save two
images with the engine and check that layerlab picks the image skopeo picks.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from handmade import (
    Layer,
    file,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

import layerlab
from layerlab import _refs

NO_ENGINE = "unix:///nonexistent/docker.sock"


def merge_docker_archives(
    path: Path, archives: Sequence[Path], tags: Sequence[list[str]]
) -> Path:
    """Write one docker-save archive with the images of ``archives``, in order.

    ``tags[i]`` becomes the ``RepoTags`` of image i (``[]`` for an untagged
    image). ``docker save A B`` writes the same shape: every image's files and
    one ``manifest.json`` that lists the images.
    """
    manifest: list[Any] = []
    written: set[str] = set()
    with tarfile.open(path, "w") as out:
        for archive, repo_tags in zip(archives, tags, strict=True):
            with tarfile.open(archive) as source:
                for member in source.getmembers():
                    if member.name == "manifest.json":
                        (entry,) = json.load(source.extractfile(member))
                        manifest.append({**entry, "RepoTags": repo_tags or None})
                    elif member.name != "repositories" and member.name not in written:
                        written.add(member.name)
                        data = source.extractfile(member) if member.isfile() else None
                        out.addfile(member, data)
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    return path


def handmade_archive(path: Path, content: bytes) -> Path:
    """Write a one-layer archive whose file /which has ``content``."""
    return write_docker_archive(path, [Layer([file("which", content)])])


def which(image: layerlab.Image) -> int:
    """Return the size of /which, which tells the handmade images apart."""
    return int(image.filesystem.set_index("path").loc["which", "size"])


@pytest.fixture
def three_images(tmp_path: Path) -> Path:
    """An archive of @0 app:1 and app:latest (5 bytes), @1 team/db:2 (6 bytes),
    and @2 untagged (7 bytes), in a directory whose name has a colon."""
    parts = [
        handmade_archive(tmp_path / f"part{size}.tar", b"x" * size)
        for size in (5, 6, 7)
    ]
    folder = tmp_path / "at:colon"
    folder.mkdir()
    return merge_docker_archives(
        folder / "three.tar",
        parts,
        [["app:1", "app:latest"], ["team/db:2"], []],
    )


# Selecting an image of a multi-image docker archive.


@pytest.mark.parametrize(
    ("selector", "size"),
    [
        ("app:1", 5),
        ("app", 5),
        ("app:latest", 5),
        ("docker.io/library/app:1", 5),
        ("index.docker.io/library/app", 5),
        ("team/db:2", 6),
        ("docker.io/team/db:2", 6),
        ("@0", 5),
        ("@1", 6),
        ("@2", 7),
    ],
)
def test_archive_selector_picks_image(
    three_images: Path, selector: str, size: int
) -> None:
    with layerlab.open_image(f"docker-archive:{three_images}:{selector}") as image:
        assert which(image) == size


def test_archive_without_selector_lists_tags(three_images: Path) -> None:
    with pytest.raises(layerlab.InvalidImageError) as caught:
        layerlab.open_image(f"docker-archive:{three_images}")
    message = str(caught.value)
    assert "contains 3 images" in message
    assert "@0 (app:1, app:latest)" in message
    assert "@1 (team/db:2)" in message
    assert "@2 (no tag)" in message
    assert "docker-archive:FILE:@N" in message


def test_archive_unknown_tag_names_archive_and_tags(three_images: Path) -> None:
    reference = f"docker-archive:{three_images}:team/db:3"
    with pytest.raises(layerlab.ReferenceNotFoundError) as caught:
        layerlab.open_image(reference)
    message = str(caught.value)
    assert "no image tagged team/db:3" in message
    assert f"archive {three_images}" in message
    assert "app:1, app:latest" in message
    assert caught.value.image == reference


def test_archive_index_out_of_range(three_images: Path) -> None:
    with pytest.raises(layerlab.ReferenceNotFoundError, match="@3 is out of range"):
        layerlab.open_image(f"docker-archive:{three_images}:@3")


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("@x", "invalid source index '@x'"),
        ("@-1", "invalid source index '@-1'"),
        ("App:1", "not a valid image reference"),
        ("app@sha256:" + "a" * 64, "contains a digest"),
    ],
)
def test_archive_invalid_selector(
    three_images: Path, selector: str, problem: str
) -> None:
    with pytest.raises(layerlab.InvalidReferenceError, match=problem):
        layerlab.open_image(f"docker-archive:{three_images}:{selector}")


def test_single_image_archive_checks_tag(tmp_path: Path) -> None:
    path = handmade_archive(tmp_path / "one.tar", b"x")
    tag = "layerlab-test/handmade:latest"
    with layerlab.open_image(f"docker-archive:{path}:{tag}") as image:
        assert which(image) == 1
    with pytest.raises(layerlab.ReferenceNotFoundError, match=tag):
        layerlab.open_image(f"docker-archive:{path}:other:1")


# Paths that contain colons.


def test_path_with_colons_without_selector(tmp_path: Path) -> None:
    path = handmade_archive(tmp_path / "a:b:c.tar", b"abc")
    for reference in (f"docker-archive:{path}", str(path)):
        with layerlab.open_image(reference) as image:
            assert which(image) == 3


def test_longest_existing_prefix_is_path(tmp_path: Path) -> None:
    # Both "x.tar" and "x.tar:@0" exist; the longer one is the path.
    short = handmade_archive(tmp_path / "x.tar", b"short")
    handmade_archive(tmp_path / "x.tar:@0", b"the longer name")
    with layerlab.open_image(f"docker-archive:{short}:@0") as image:
        assert which(image) == len(b"the longer name")
    with layerlab.open_image(f"docker-archive:{short}:layerlab-test/handmade") as image:
        assert which(image) == len(b"short")


def test_oci_layout_path_with_colon_and_name(tmp_path: Path) -> None:
    root = write_oci_layout(
        tmp_path / "lay:out", [Layer([file("which", b"oci")])], tag="app:v1"
    )
    # handmade layouts store the tag part (v1) as the ref.name annotation.
    with layerlab.open_image(f"oci:{root}:v1") as image:
        assert which(image) == 3
    with layerlab.open_image(f"oci:{root}:@0") as image:
        assert which(image) == 3
    with pytest.raises(layerlab.ReferenceNotFoundError, match=r"v1 \(@0\)"):
        layerlab.open_image(f"oci:{root}:v2")
    with pytest.raises(layerlab.ReferenceNotFoundError, match="@1 is out of range"):
        layerlab.open_image(f"oci:{root}:@1")


def test_missing_path_lists_tried_prefixes(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tar"
    with pytest.raises(layerlab.ReferenceNotFoundError) as caught:
        layerlab.open_image(f"docker-archive:{missing}:app:1")
    message = str(caught.value)
    assert f"'{missing}:app:1'" in message
    assert f"'{missing}:app'" in message
    assert f"'{missing}'" in message


# Plain paths with a selector, read as with a transport.


@pytest.mark.parametrize(
    ("selector", "size"), [("@0", 5), ("@1", 6), ("team/db:2", 6), ("app", 5)]
)
def test_plain_path_takes_selector(
    three_images: Path, selector: str, size: int
) -> None:
    reference = _refs.parse_reference(f"{three_images}:{selector}")
    assert reference.transport == "docker-archive"
    assert reference.location == str(three_images)
    with layerlab.open_image(f"{three_images}:{selector}") as image:
        assert which(image) == size


def test_plain_path_index_out_of_range(three_images: Path) -> None:
    with pytest.raises(layerlab.ReferenceNotFoundError, match="@5 is out of range"):
        layerlab.open_image(f"{three_images}:@5")


def test_missing_plain_path_with_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(layerlab.ReferenceNotFoundError) as caught:
        _refs.parse_reference("missing.tar:@1")
    assert str(caught.value) == "file missing.tar not found"


def test_name_beside_directory_goes_to_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nginx").mkdir()
    reference = _refs.parse_reference("nginx:latest")
    assert reference.transport == "docker-daemon"
    assert reference.location == "nginx:latest"


def test_plain_layout_directory_takes_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_oci_layout(
        tmp_path / "layout", [Layer([file("which", b"oci")])], tag="app:v1"
    )
    monkeypatch.chdir(tmp_path)
    with layerlab.open_image("layout:v1") as image:
        assert which(image) == 3


def test_reference_round_trips_to_text() -> None:
    reference = _refs.Reference("docker-archive", "x.tar", source_index=2)
    assert str(reference) == "docker-archive:x.tar:@2"
    assert str(_refs.Reference("oci", "dir", name="v1")) == "oci:dir:v1"


# Mistyped transports and names that resolve to nothing.


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("oci-archve:img.tar", "oci-archive:"),
        ("docker-archve:x.tar", "docker-archive:"),
        ("dockerarchive:/tmp/x.tar", "docker-archive:"),
        ("OCI-ARCHIVE:img.tar", "oci-archive:"),
    ],
)
def test_typo_in_transport_suggests_one(text: str, suggestion: str) -> None:
    with pytest.raises(layerlab.InvalidReferenceError) as caught:
        layerlab.open_image(text)
    message = str(caught.value)
    assert f"unknown transport '{text.partition(':')[0]}:'" in message
    assert f"did you mean '{suggestion}'" in message
    for transport in ("docker-archive:FILE", "oci-archive:FILE", "oci:DIR"):
        assert transport in message


def test_typo_of_existing_file_path(tmp_path: Path) -> None:
    path = handmade_archive(tmp_path / "img", b"x")
    with pytest.raises(layerlab.InvalidReferenceError, match="did you mean 'oci:'"):
        layerlab.open_image(f"ocj:{path}")


@pytest.mark.parametrize(
    "text",
    [
        "registry.example:5000/app",  # a registry host with a port
        "localhost:5000/app",
        "ubuntu:22.04",
        "docker:20.10",  # the docker image, not the docker:// transport
        "python:3.12-slim",
        "cockroach:v23",
        "docker-compose:1",
    ],
)
def test_no_suggestion_for_image_names(text: str) -> None:
    assert _refs.suggest_transport(text) is None


def test_name_like_typo_asks_engine_first(monkeypatch) -> None:
    # "dockr-daemon:app" is a valid image name, so only after the engine
    # fails does the message point at the transport.
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with pytest.raises(layerlab.InvalidReferenceError) as caught:
        layerlab.open_image("dockr-daemon:app")
    message = str(caught.value)
    assert "neither a file nor reachable through the engine" in message
    assert "did you mean 'docker-daemon:'" in message


def test_bare_name_without_engine_lists_transports(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with pytest.raises(layerlab.EngineError) as caught:
        layerlab.open_image("layerlab-test/absent:1")
    message = str(caught.value)
    assert "'layerlab-test/absent:1' is neither a file nor reachable" in message
    assert NO_ENGINE in message
    for transport in _refs.TRANSPORTS:
        assert f"{transport}:" in message


def test_explicit_daemon_without_engine_keeps_engine_error(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with pytest.raises(layerlab.EngineError) as caught:
        layerlab.open_image("docker-daemon:layerlab-test/absent:1")
    assert "neither a file" not in str(caught.value)
    assert "DOCKER_HOST" in str(caught.value)


@pytest.mark.engine
def test_bare_name_missing_in_engine(engine: Any) -> None:
    with pytest.raises(layerlab.ReferenceNotFoundError) as caught:
        layerlab.open_image("layerlab-test/absent-for-refs:1")
    message = str(caught.value)
    assert "is neither a file nor an image in the Docker Engine" in message
    assert "docker-archive:FILE" in message


# A real multi-image archive from the engine, compared with skopeo.


def save_images(client: Any, names: list[str], path: Path) -> Path:
    """Save several engine images into one archive, as ``docker save A B``."""
    api = client.api
    response = api.get(
        f"{api.base_url}/v{api.api_version}/images/get",
        params={"names": names},
        stream=True,
    )
    response.raise_for_status()
    with path.open("wb") as out:
        for chunk in response.iter_content(1 << 16):
            out.write(chunk)
    response.close()
    return path


def skopeo_inspect(reference: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["skopeo", "inspect", "--raw", *options, reference],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def engine_pair(
    docker_client: Any, test_image: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Two test images saved into one archive; the first also tagged :alias."""
    first, second = test_image("overwrite").tag, test_image("symlinks").tag
    alias = "layerlab-test/overwrite:alias"
    docker_client.images.get(first).tag(alias)
    folder = tmp_path_factory.mktemp("pair")
    path = save_images(docker_client, [first, alias, second], folder / "pair.tar")
    # skopeo cuts a docker-archive path at its first colon, so it reads the
    # archive through a colon-free name and layerlab through one with colons.
    colon_path = folder / "pair:saved.tar"
    os.link(path, colon_path)
    return {
        "path": path,
        "colon_path": colon_path,
        "tags": [first, alias, second],
        "order": [entry["RepoTags"] for entry in _manifest(path)],
    }


def _manifest(path: Path) -> list[dict[str, Any]]:
    with tarfile.open(path) as archive:
        return json.load(archive.extractfile("manifest.json"))


def _selectors(pair: dict[str, Any]) -> list[str]:
    tags = pair["tags"]
    short = [tag.removesuffix(":latest") for tag in tags if tag.endswith(":latest")]
    qualified = [f"docker.io/{tag}" for tag in tags]
    return [*tags, *short, *qualified, "@0", "@1"]


@pytest.mark.engine
def test_engine_archive_selection_matches_skopeo(engine_pair: dict[str, Any]) -> None:
    assert shutil.which("skopeo")
    # One entry carries both tags of the first image.
    assert sorted(len(tags) for tags in engine_pair["order"]) == [1, 2]
    for selector in _selectors(engine_pair):
        raw = skopeo_inspect(f"docker-archive:{engine_pair['path']}:{selector}")
        assert raw.returncode == 0, raw.stderr
        config = skopeo_inspect(
            f"docker-archive:{engine_pair['path']}:{selector}", "--config"
        )
        assert config.returncode == 0, config.stderr
        expected_digest = json.loads(raw.stdout)["config"]["digest"]

        reference = f"docker-archive:{engine_pair['colon_path']}:{selector}"
        with layerlab.open_image(reference, cache=False) as image:
            chosen = image.manifest["Config"]
            assert (
                chosen.removesuffix(".json").split("/")[-1]
                == (expected_digest.split(":")[1])
            ), selector
            assert image.config == json.loads(config.stdout), selector


@pytest.mark.engine
def test_engine_archive_errors_agree_with_skopeo(engine_pair: dict[str, Any]) -> None:
    path, colon_path = engine_pair["path"], engine_pair["colon_path"]
    for selector, error in (
        ("", layerlab.InvalidImageError),
        (":layerlab-test/absent:1", layerlab.ReferenceNotFoundError),
        (":@2", layerlab.ReferenceNotFoundError),
    ):
        assert skopeo_inspect(f"docker-archive:{path}{selector}").returncode != 0
        with pytest.raises(error) as caught:
            layerlab.open_image(f"docker-archive:{colon_path}{selector}")
        for tags in engine_pair["order"]:
            for tag in tags:
                assert tag in str(caught.value), selector
        assert str(colon_path) in str(caught.value)


def compressed_copy(path: Path, compression: str) -> Path:
    """Compress ``path`` as ``docker save img | gzip`` (or ``zstd``) would."""
    import gzip

    import zstandard

    data = path.read_bytes()
    if compression == "gzip":
        target = path.with_name(path.name + ".gz")
        target.write_bytes(gzip.compress(data))
    else:
        target = path.with_name(path.name + ".zst")
        target.write_bytes(zstandard.ZstdCompressor().compress(data))
    return target


def spooled_files(directory: Path) -> list[str]:
    return sorted(
        name for name in os.listdir(directory) if name.startswith("layerlab-")
    )


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of its own, to see what a read leaves behind."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(directory))
    return directory


COMPRESSED_READS = [
    ("gzip", "docker-archive:{}", "docker"),
    ("zstd", "docker-archive:{}", "docker"),
    ("gzip", "{}", "docker"),
    ("zstd", "oci-archive:{}", "oci"),
    ("gzip", "{}", "oci"),
    # The transport is read from the inflated copy, as without a selector.
    ("gzip", "{}:@0", "oci"),
]


@pytest.mark.parametrize(("compression", "form", "layout"), COMPRESSED_READS)
def test_compressed_archive_reads_as_plain(
    tmp_path: Path, private_tmp: Path, compression: str, form: str, layout: str
) -> None:
    layers = [Layer([file("a.txt", b"a" * 300)]), Layer([file("b.txt", b"b" * 70)])]
    if layout == "docker":
        plain = write_docker_archive(tmp_path / "image.tar", layers)
    else:
        plain = write_oci_archive(tmp_path / "image.tar", layers)
    packed = compressed_copy(plain, compression)
    with layerlab.open_image(str(plain), cache=False) as expected:
        with layerlab.open_image(form.format(packed), cache=False) as image:
            assert spooled_files(private_tmp) != []
            assert image.files.equals(expected.files)
            assert list(image.layers["content_size"]) == [300, 70]
    # The inflated copy is gone once the image is closed.
    assert spooled_files(private_tmp) == []


def test_damaged_compressed_archive(tmp_path: Path, private_tmp: Path) -> None:
    plain = write_docker_archive(
        tmp_path / "image.tar", [Layer([file("a.bin", os.urandom(200_000))])]
    )
    packed = compressed_copy(plain, "gzip")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(
        layerlab.InvalidImageError, match="gzip compressed archive is damaged"
    ):
        layerlab.open_image(f"docker-archive:{cut}", cache=False)
    assert spooled_files(private_tmp) == []
