"""Squash of hand-made images, checked without an engine.

The expected results are worked out by hand from the layers below. The
squashed archives are read with Python's tarfile and json, and their final
filesystem is computed by ``overlay`` in this file, a small applier of the
OCI whiteout rules written independently of layerlab's merge.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard
from handmade import (
    Layer,
    byte_name,
    directory,
    file,
    hardlink,
    opaque,
    symlink,
    whiteout,
    write_docker_archive,
    write_oci_archive,
)

import layerlab
from layerlab._squash import layer_for_history_count, predict_squash, squash

CAPABILITY = "\x01\x00\x00\x02\x00\x04\x00\x00" + "\x00" * 12
"""A ``security.capability`` value: cap_net_bind_service, effective."""


# Reading archives without layerlab


def _archive_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive
            if member.isfile()
        }


def _uncompress(blob: bytes) -> bytes:
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return blob


def _oci_parts(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[bytes]]:
    """Return the index, the manifest and the layer blobs of an OCI archive."""
    members = _archive_members(path)
    index = json.loads(members["index.json"])
    manifest = json.loads(_blob(members, index["manifests"][0]["digest"]))
    layers = [_blob(members, layer["digest"], raw=True) for layer in manifest["layers"]]
    return index, manifest, layers


def _blob(members: dict[str, bytes], digest: str, *, raw: bool = False) -> Any:
    data = members["blobs/" + digest.replace(":", "/", 1)]
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data if raw else data.decode()


def _oci_config(path: Path) -> dict[str, Any]:
    members = _archive_members(path)
    _, manifest, _ = _oci_parts(path)
    return json.loads(_blob(members, manifest["config"]["digest"]))


def _layer_tars(path: Path) -> list[bytes]:
    return [_uncompress(blob) for blob in _oci_parts(path)[2]]


def _entries(layer: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
        return archive.getmembers()


def _names(layer: bytes) -> list[str]:
    return [_normalise(member.name) for member in _entries(layer)]


def overlay(layers: list[bytes]) -> dict[str, tuple[Any, ...]]:
    """Apply layer tars bottom to top and return path -> what a reader gets.

    Whiteouts and opaque markers apply to lower layers only. A non-directory
    that replaces a directory hides its children. A hardlink shows the
    content of the path it points to in the same layer.
    """
    tree: dict[str, tuple[Any, ...]] = {}
    for layer in layers:
        members, contents = _read_layer(layer)
        for member in members:
            _apply_marker(tree, member.name)
        for member in members:
            _apply_entry(tree, member, contents)
    return tree


def _read_layer(layer: bytes) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    members, contents = [], {}
    with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
        for member in archive:
            member.name = _normalise(member.name)
            members.append(member)
            data = archive.extractfile(member) if member.isreg() else None
            if data is not None:
                contents[member.name] = data.read()
    return members, contents


def _normalise(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _apply_marker(tree: dict[str, tuple[Any, ...]], name: str) -> None:
    parent, base = posixpath.split(name)
    if base == ".wh..wh..opq":
        _remove_below(tree, parent)
    elif base.startswith(".wh."):
        target = posixpath.join(parent, base[4:])
        tree.pop(target, None)
        _remove_below(tree, target)


def _remove_below(tree: dict[str, tuple[Any, ...]], directory: str) -> None:
    for path in [path for path in tree if path.startswith(directory + "/")]:
        del tree[path]


def _apply_entry(
    tree: dict[str, tuple[Any, ...]],
    member: tarfile.TarInfo,
    contents: dict[str, bytes],
) -> None:
    if posixpath.basename(member.name).startswith(".wh.") or not member.name:
        return
    if not member.isdir():
        _remove_below(tree, member.name)
    if member.islnk():
        content = contents[_normalise(member.linkname)]
        kind, target = "file", None
    elif member.isreg():
        content = contents[member.name]
        kind, target = "file", None
    else:
        content = b""
        kind, target = "other", None
        if member.isdir():
            kind = "dir"
        elif member.issym():
            kind, target = "symlink", member.linkname
    xattrs = {
        key: value
        for key, value in member.pax_headers.items()
        if key.startswith("SCHILY.xattr.")
    }
    tree[member.name] = (
        kind,
        member.mode & 0o7777,
        member.uid,
        member.gid,
        member.mtime,
        hashlib.sha256(content).hexdigest(),
        target,
        tuple(sorted(xattrs.items())),
    )


def _overlay_of_archive(path: Path) -> dict[str, tuple[Any, ...]]:
    return overlay(_layer_tars(path))


def _content_bytes(layers: list[bytes]) -> int:
    return sum(
        member.size for layer in layers for member in _entries(layer) if member.isreg()
    )


# Images


def _pax_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, **fields: Any
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_700_000_000
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _layered(tmp_path: Path) -> Path:
    """Five layers: a base, then steps that overwrite, delete and recreate.

    - 0: etc/a (100 bytes), etc/b (50), d/p (10), d/q (20), x (10), k/f (40)
    - 1: etc/a rewritten (200), z added (30), whiteout of x
    - 2: whiteout of z, d made opaque with d/r (5), k replaced by a file (4)
    - 3: etc/a rewritten again (300), ./-spelled names
    - 4: w added (1)
    """
    layers = [
        Layer(
            [
                directory("etc"),
                file("etc/a", b"a" * 100),
                file("etc/b", b"b" * 50),
                directory("d"),
                file("d/p", b"p" * 10),
                file("d/q", b"q" * 20),
                file("x", b"x" * 10),
                directory("k"),
                file("k/f", b"f" * 40),
            ],
            created_by="/bin/sh -c #(nop) ADD file:base in /",
        ),
        Layer(
            [
                directory("etc"),
                file("etc/a", b"A" * 200),
                file("z", b"z" * 30),
                whiteout("x"),
            ],
            created_by="/bin/sh -c step-one",
        ),
        Layer(
            [
                whiteout("z"),
                directory("d"),
                opaque("d"),
                file("d/r", b"r" * 5),
                file("k", b"kkkk"),
            ],
            created_by="/bin/sh -c step-two",
        ),
        Layer(
            [directory("./etc"), file("./etc/a", b"3" * 300, mode=0o600, uid=7)],
            created_by="/bin/sh -c step-three",
        ),
        Layer([file("w", b"w")], created_by="/bin/sh -c step-four"),
    ]
    return write_oci_archive(tmp_path / "layered.tar", layers, empty_history=1)


# Range selection


def test_squash_all_layers_by_hand(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar")

    # Hidden: etc/a 100 and 200, etc/b survives, d/p 10, d/q 20, x 10, z 30,
    # k/f 40.
    assert result.saved_bytes == 100 + 200 + 10 + 20 + 10 + 30 + 40
    assert result.predicted_bytes == result.saved_bytes
    assert image.metrics.reclaimable_bytes == result.saved_bytes
    assert result.layers_before == 5
    assert result.layers_after == 1

    layers = _layer_tars(Path(result.output))
    assert len(layers) == 1
    assert sorted(_names(layers[0])) == ["d", "d/r", "etc", "etc/a", "etc/b", "k", "w"]
    assert _content_bytes(layers) == 300 + 50 + 5 + 4 + 1
    assert overlay(layers) == overlay(_layer_tars(source))


def test_squash_middle_keeps_whiteouts_below(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar", first=1, last=2)

    layers = _layer_tars(Path(result.output))
    assert len(layers) == 4
    names = _names(layers[1])
    # x, d/p and d/q are in layer 0 and hidden after the range: kept hidden.
    assert ".wh.x" in names
    assert "d/.wh.p" in names or "d/.wh..wh..opq" in names
    # z lived and died inside the range: its whiteout hides nothing below.
    assert ".wh.z" not in names
    assert "z" not in names
    # k/f is hidden by the file k that replaces the directory.
    assert "k" in names
    assert "k/.wh.f" not in names
    # Only z (30) is hidden inside the range: etc/a's first rewrite (200) is
    # hidden by layer 3, above the range, so the squashed layer keeps it.
    assert result.saved_bytes == 30
    assert predict_squash(image, 1, 2) == 30
    assert overlay(layers) == overlay(_layer_tars(source))


def test_squash_ranges_equal_the_original(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    expected = overlay(_layer_tars(source))
    for first in range(5):
        for last in range(first, 5):
            out = tmp_path / f"out-{first}-{last}.tar"
            result = squash(image, output=out, first=first, last=last)
            layers = _layer_tars(out)
            assert len(layers) == 5 - (last - first), (first, last)
            assert overlay(layers) == expected, (first, last)
            stored = _content_bytes(_layer_tars(source)) - _content_bytes(layers)
            assert stored == result.saved_bytes, (first, last)
            assert result.saved_bytes == predict_squash(image, first, last)


def test_squash_range_by_digest_and_negative(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    diff_id = str(image.layers.loc[2, "diff_id"])
    digest = str(image.layers.loc[3, "digest"])

    by_digest = squash(
        image, output=tmp_path / "a.tar", first=diff_id[:19], last=digest[7:20]
    )
    assert (by_digest.first, by_digest.last) == (2, 3)
    negative = squash(image, output=tmp_path / "b.tar", first=-2)
    assert (negative.first, negative.last) == (3, 4)
    text = squash(image, output=tmp_path / "c.tar", first="1", last="3")
    assert (text.first, text.last) == (1, 3)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (3, 1, "range is empty"),
        (5, None, "out of range"),
        (None, -6, "out of range"),
        ("sha256:ffff", None, "matches no layer"),
        ("sha256:", None, "matches 5 layers"),
    ],
)
def test_squash_rejects_bad_ranges(
    tmp_path: Path, first: Any, last: Any, message: str
) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    with pytest.raises(layerlab.OptionError, match=message):
        squash(image, output=tmp_path / "out.tar", first=first, last=last)
    assert not (tmp_path / "out.tar").exists()


def test_history_count_as_docker_squash(tmp_path: Path) -> None:
    # History: ENV (empty), then one entry per layer 0..4.
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    assert layer_for_history_count(image, 1) == 4
    assert layer_for_history_count(image, 2) == 3
    assert layer_for_history_count(image, 5) == 0
    assert layer_for_history_count(image, 6) == 0
    with pytest.raises(layerlab.OptionError, match="out of range"):
        layer_for_history_count(image, 7)


# Entries that need care


def test_hardlink_to_deleted_target_becomes_file(tmp_path: Path) -> None:
    long_target = "h/" + "t" * 120
    long_link = "h/" + "u" * 120
    source = write_oci_archive(
        tmp_path / "links.tar",
        [
            Layer(
                [
                    directory("h"),
                    file(long_target, b"T" * 30),
                    hardlink("h/b", long_target),
                    hardlink(long_link, long_target),
                    file("h/keep", b"K" * 8),
                    hardlink("h/also", "h/keep"),
                ]
            ),
            Layer([directory("h"), whiteout(long_target)]),
        ],
    )
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar")

    layer = _layer_tars(Path(result.output))[0]
    members = {_normalise(m.name): m for m in _entries(layer)}
    assert long_target not in members
    # The first link carries the bytes, the second links to it.
    assert members["h/b"].isreg()
    assert members["h/b"].size == 30
    assert members[long_link].islnk()
    assert members[long_link].linkname == "h/b"
    # A group whose file is still there stays a link to it.
    assert members["h/also"].islnk()
    assert members["h/also"].linkname == "h/keep"
    assert _content_bytes([layer]) == 30 + 8
    assert result.saved_bytes == 0
    assert overlay([layer]) == overlay(_layer_tars(source))


def test_metadata_and_xattrs_kept(tmp_path: Path) -> None:
    base = _pax_tar(
        [
            (_info("bin", tarfile.DIRTYPE), None),
            (
                _info(
                    "bin/ping",
                    size=4,
                    mode=0o4755,
                    uid=1000,
                    gid=1001,
                    mtime=1_600_000_123,
                    pax_headers={
                        "SCHILY.xattr.security.capability": CAPABILITY,
                        "SCHILY.xattr.user.note": "kept",
                    },
                ),
                b"ping",
            ),
            (_info("tmp", tarfile.DIRTYPE, mode=0o1777), None),
            (_info("dev", tarfile.DIRTYPE), None),
            (_info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None),
            (_info("run", tarfile.DIRTYPE), None),
            (_info("run/pipe", tarfile.FIFOTYPE), None),
            (_info("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"), None),
        ]
    )
    top = _pax_tar(
        [(_info("bin", tarfile.DIRTYPE), None), (_info("bin/x", size=1), b"x")]
    )
    source = write_oci_archive(tmp_path / "meta.tar", [Layer(raw=base), Layer(raw=top)])
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar")

    layer = _layer_tars(Path(result.output))[0]
    members = {_normalise(m.name): m for m in _entries(layer)}
    ping = members["bin/ping"]
    assert ping.mode == 0o4755
    assert (ping.uid, ping.gid, ping.mtime) == (1000, 1001, 1_600_000_123)
    assert ping.pax_headers["SCHILY.xattr.security.capability"] == CAPABILITY
    assert ping.pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert members["tmp"].mode == 0o1777
    assert members["dev/null"].ischr()
    assert (members["dev/null"].devmajor, members["dev/null"].devminor) == (1, 3)
    assert members["run/pipe"].isfifo()
    assert members["bin/sh"].linkname == "/bin/busybox"
    assert overlay([layer]) == overlay(_layer_tars(source))


def test_kind_changes_survive_middle_squash(tmp_path: Path) -> None:
    source = write_oci_archive(
        tmp_path / "kinds.tar",
        [
            Layer(
                [directory("y"), file("y/f", b"f" * 9), file("f", b"1"), directory("s")]
            ),
            # y becomes a file, f a directory, s a symlink.
            Layer([file("y", b"Y"), directory("f"), file("f/in", b"i" * 3)]),
            Layer([symlink("s", "f")]),
            # y goes back to a directory: y/f must stay hidden.
            Layer([whiteout("y"), directory("y"), file("y/g", b"g")]),
            Layer([file("top", b"t")]),
        ],
    )
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    expected = overlay(_layer_tars(source))
    assert "y/f" not in expected

    result = squash(image, output=tmp_path / "out.tar", first=1, last=3)
    layers = _layer_tars(Path(result.output))
    assert overlay(layers) == expected
    # y is a directory again in the squashed layer, so y/f needs a whiteout.
    assert "y/.wh.f" in _names(layers[1])


def test_opaque_directory_hiding_below(tmp_path: Path) -> None:
    source = write_oci_archive(
        tmp_path / "opaque.tar",
        [
            Layer([directory("o"), file("o/old", b"o" * 11), directory("o/sub")]),
            Layer([directory("o"), opaque("o"), file("o/new", b"n")]),
            # An opaque marker over a directory made in the range hides nothing
            # below the range.
            Layer([directory("q"), file("q/a", b"a")]),
            Layer([directory("q"), opaque("q"), file("q/b", b"b")]),
        ],
    )
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar", first=1)
    layers = _layer_tars(Path(result.output))
    names = _names(layers[1])
    assert overlay(layers) == overlay(_layer_tars(source))
    assert "q/.wh..wh..opq" not in names
    assert "q/.wh.a" not in names
    assert result.saved_bytes == 1


# The written image


def test_oci_output_manifest_config_history(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    squash(
        image,
        output=tmp_path / "out.tar",
        first=1,
        last=3,
        tag="layerlab-test/squashed:v1",
        compression="zstd",
    )
    index, manifest, blobs = _oci_parts(tmp_path / "out.tar")
    config = _oci_config(tmp_path / "out.tar")

    annotations = index["manifests"][0]["annotations"]
    assert (
        annotations["org.opencontainers.image.ref.name"] == "layerlab-test/squashed:v1"
    )
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    media_types = [layer["mediaType"] for layer in manifest["layers"]]
    assert media_types[1] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert blobs[1][:4] == b"\x28\xb5\x2f\xfd"
    for descriptor, blob in zip(manifest["layers"], blobs):
        assert descriptor["size"] == len(blob)
    diff_ids = [
        "sha256:" + hashlib.sha256(_uncompress(blob)).hexdigest() for blob in blobs
    ]
    assert config["rootfs"]["diff_ids"] == diff_ids
    # Layers outside the range are the original blobs.
    assert diff_ids[0] == str(image.layers.loc[0, "diff_id"])
    assert diff_ids[2] == str(image.layers.loc[4, "diff_id"])

    history = config["history"]
    assert history[0]["empty_layer"] is True
    made = [entry for entry in history if not entry.get("empty_layer")]
    assert len(made) == len(diff_ids)
    squashed = made[1]
    for step in ("step-one", "step-two", "step-three"):
        assert step in squashed["created_by"]
    assert "step-four" not in squashed["created_by"]
    assert "layerlab" in squashed["comment"]
    assert made[2]["created_by"] == "/bin/sh -c step-four"
    assert config["config"] == image.config["config"]


def test_docker_output_loads_back(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    squash(
        image,
        output=tmp_path / "out.tar",
        format="docker",
        first=2,
        tag="layerlab-test/squashed:docker",
        message="squashed for a test",
    )
    members = _archive_members(tmp_path / "out.tar")
    manifest = json.loads(members["manifest.json"])
    assert manifest[0]["RepoTags"] == ["layerlab-test/squashed:docker"]
    config_bytes = members[manifest[0]["Config"]]
    assert manifest[0]["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
    config = json.loads(config_bytes)
    layers = [members[name] for name in manifest[0]["Layers"]]
    # docker save stores layers uncompressed.
    assert all(_uncompress(layer) == layer for layer in layers)
    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers
    ]
    assert config["history"][-1]["comment"] == "squashed for a test"
    assert overlay(layers) == overlay(_layer_tars(source))

    reread = layerlab.open_image(f"docker-archive:{tmp_path / 'out.tar'}", cache=False)
    assert len(reread.layers) == 3
    assert list(reread.filesystem["path"]) == list(image.filesystem["path"])


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_compression_of_squashed_layer(tmp_path: Path, compression: str) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    squash(image, output=tmp_path / "out.tar", compression=compression)
    _, manifest, blobs = _oci_parts(tmp_path / "out.tar")
    suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[compression]
    assert manifest["layers"][0]["mediaType"] == (
        "application/vnd.oci.image.layer.v1.tar" + suffix
    )
    magic = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd", "none": b""}[compression]
    assert blobs[0].startswith(magic)


def test_output_written_atomically(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    out = tmp_path / "out" / "image.tar"
    out.parent.mkdir()
    out.write_bytes(b"previous content")

    class Interrupt(Exception):
        pass

    class FailingProgress:
        def start(self, total: int, description: str) -> None:
            pass

        def advance(self, amount: int) -> None:
            raise Interrupt

        def finish(self) -> None:
            pass

    with pytest.raises(Interrupt):
        squash(image, output=out, progress=FailingProgress())
    assert out.read_bytes() == b"previous content"
    assert os.listdir(out.parent) == ["image.tar"]

    squash(image, output=out)
    assert os.listdir(out.parent) == ["image.tar"]
    assert tarfile.is_tarfile(out)


def test_output_must_not_be_input(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    before = source.read_bytes()
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    with pytest.raises(layerlab.OptionError, match="input"):
        squash(image, output=source)
    assert source.read_bytes() == before


def test_invalid_format_and_compression(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    with pytest.raises(layerlab.OptionError, match="format"):
        squash(image, output=tmp_path / "a.tar", format="tarball")
    with pytest.raises(layerlab.OptionError, match="compression"):
        squash(image, output=tmp_path / "a.tar", compression="lz4")


def test_docker_archive_source(tmp_path: Path) -> None:
    layers = [
        Layer([directory("a"), file("a/x", b"x" * 10)]),
        Layer([file("a/x", b"y" * 20)], compression="gzip"),
    ]
    source = write_docker_archive(tmp_path / "in.tar", layers)
    image = layerlab.open_image(f"docker-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar")
    assert result.saved_bytes == 10
    layer = _layer_tars(Path(result.output))[0]
    assert overlay([layer])["a/x"][5] == hashlib.sha256(b"y" * 20).hexdigest()


# Command line


def test_cli_squash_writes_archive(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    out = tmp_path / "cli.tar"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerlab.cli",
            "squash",
            f"oci-archive:{source}",
            "--from",
            "2",
            "--history-count",
            "-o",
            str(out),
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "squashed layers 3-4" in completed.stdout
    assert len(_layer_tars(out)) == 4


def test_cli_squash_bad_range_exits_2(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerlab.cli",
            "squash",
            f"oci-archive:{source}",
            "--from",
            "9",
            "-o",
            str(tmp_path / "cli.tar"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "out of range" in completed.stderr
    assert not (tmp_path / "cli.tar").exists()


def test_docker_tag_without_tag_gets_latest(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    squash(image, output=tmp_path / "a.tar", format="docker", tag="localhost:5000/x")
    manifest = json.loads(_archive_members(tmp_path / "a.tar")["manifest.json"])
    assert manifest[0]["RepoTags"] == ["localhost:5000/x:latest"]


def test_squash_opens_and_closes_reference(tmp_path: Path) -> None:
    source = _layered(tmp_path)
    result = squash(f"oci-archive:{source}", output=tmp_path / "out.tar", first=3)
    assert (result.first, result.last) == (3, 4)
    assert overlay(_layer_tars(tmp_path / "out.tar")) == overlay(_layer_tars(source))


def test_same_path_twice_and_whiteout_readd(tmp_path: Path) -> None:
    source = write_oci_archive(
        tmp_path / "twice.tar",
        [
            Layer([directory("d"), file("d/x", b"x" * 7), file("a", b"old")]),
            # a written twice in one layer: the second wins, the first (1
            # byte) is stored for nothing.
            Layer([file("a", b"1"), file("a", b"22")]),
            # d deleted and made again in one layer: the whiteout applies to
            # lower layers only, so the new d and d/y stay.
            Layer([whiteout("d"), directory("d"), file("d/y", b"y")]),
        ],
    )
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar", first=1)
    layers = _layer_tars(Path(result.output))
    names = _names(layers[1])

    assert overlay(layers) == overlay(_layer_tars(source))
    assert names.count("a") == 1
    assert "d/.wh.x" in names
    assert "d/y" in names
    assert result.saved_bytes == 1
    assert _content_bytes(layers) == 7 + 3 + 2 + 1


# Names that are not valid UTF-8

CAFE = b"caf\xe9.txt"
"""A Latin-1 name that is not valid UTF-8, spelt caf\ufffdxe9.txt in tables."""


def _raw_members(layer: bytes) -> dict[bytes, tarfile.TarInfo]:
    """Return a layer tar's members by name as bytes, whatever those bytes are."""
    with tarfile.open(
        fileobj=io.BytesIO(layer), encoding="utf-8", errors="surrogateescape"
    ) as archive:
        return {
            member.name.encode("utf-8", "surrogateescape"): member for member in archive
        }


def _docker_layer_tars(path: Path) -> list[bytes]:
    members = _archive_members(path)
    manifest = json.loads(members["manifest.json"])
    return [members[name] for name in manifest[0]["Layers"]]


def _non_utf8_image(tmp_path: Path) -> Path:
    """Write two layers: CAFE (50 bytes), then CAFE again (5 bytes) beside the
    UTF-8 name that spells CAFE with a backslash escape (7 bytes)."""
    layers = [
        Layer([file(byte_name(CAFE), b"x" * 50)]),
        Layer([file(byte_name(CAFE), b"y" * 5), file("caf\\xe9.txt", b"z" * 7)]),
    ]
    return write_docker_archive(tmp_path / "nonutf8.tar", layers)


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("output_format", ["oci", "docker"])
def test_squash_keeps_non_utf8_name(
    tmp_path: Path, output_format: str, cache: bool
) -> None:
    source = _non_utf8_image(tmp_path)
    if cache:
        layerlab.open_image(f"docker-archive:{source}").close()
    image = layerlab.open_image(f"docker-archive:{source}", cache=cache)
    assert list(image.filesystem["path"]) == ["caf\\xe9.txt", "caf\ufffdxe9.txt"]
    result = squash(image, output=tmp_path / "out.tar", format=output_format)

    out = Path(result.output)
    layers = _layer_tars(out) if output_format == "oci" else _docker_layer_tars(out)
    assert len(layers) == 1
    members = _raw_members(layers[0])
    assert sorted(members) == [b"caf\\xe9.txt", CAFE]
    assert members[CAFE].size == 5
    assert members[b"caf\\xe9.txt"].size == 7
    assert result.saved_bytes == 50
    assert result.predicted_bytes == 50
    reread = layerlab.open_image(str(out), cache=False)
    assert list(reread.filesystem["path"]) == ["caf\\xe9.txt", "caf\ufffdxe9.txt"]


def test_squash_non_utf8_links_and_whiteouts(tmp_path: Path) -> None:
    source = write_oci_archive(
        tmp_path / "links.tar",
        [
            Layer([file(byte_name(b"old\xff"), b"o" * 10)]),
            Layer(
                [
                    file(byte_name(CAFE), b"x" * 50),
                    hardlink(byte_name(b"l1\xe9"), byte_name(CAFE)),
                    hardlink(byte_name(b"l2\xe9"), byte_name(CAFE)),
                    symlink(byte_name(b"s\xfe"), byte_name(b"to\xfd")),
                ]
            ),
            # The rewrite leaves l1 and l2 as the only holders of the first
            # content: l1 becomes a file with it and l2 links to l1.
            Layer([whiteout(byte_name(b"old\xff")), file(byte_name(CAFE), b"y")]),
        ],
    )
    image = layerlab.open_image(f"oci-archive:{source}", cache=False)
    result = squash(image, output=tmp_path / "out.tar", first=1)

    layers = _layer_tars(Path(result.output))
    members = _raw_members(layers[1])
    assert sorted(members) == [b".wh.old\xff", CAFE, b"l1\xe9", b"l2\xe9", b"s\xfe"]
    assert members[b"l1\xe9"].isreg()
    assert members[b"l1\xe9"].size == 50
    assert members[b"l2\xe9"].islnk()
    assert members[b"l2\xe9"].linkname == byte_name(b"l1\xe9")
    assert members[b"s\xfe"].linkname == byte_name(b"to\xfd")
    assert overlay(layers) == overlay(_layer_tars(source))


@pytest.mark.parametrize("flags", [[], ["--no-cache"]])
def test_cli_squash_non_utf8_name(tmp_path: Path, flags: list[str]) -> None:
    source = _non_utf8_image(tmp_path)
    out = tmp_path / "x.tar"
    completed = subprocess.run(
        [sys.executable, "-m", "layerlab.cli", "squash", str(source), "-o", str(out)]
        + flags,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    members = _raw_members(_layer_tars(out)[0])
    assert sorted(members) == [b"caf\\xe9.txt", CAFE]


def test_write_error_names_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write_oci_archive(tmp_path / "in.tar", [Layer([file("a", b"a")])])
    output = tmp_path / "out.tar"

    def full_disk(source: str, target: str) -> None:
        raise OSError(28, "No space left on device", source)

    # The packed archive is renamed into place last. A full disk cannot be had
    # on demand, so that rename fails here, naming the staging file.
    monkeypatch.setattr("layerlab._write.os.replace", full_disk)
    with layerlab.open_image(f"oci-archive:{archive}", cache=False) as image:
        with pytest.raises(OSError, match="No space left") as caught:
            squash(image, output=output)
    assert caught.value.filename == str(output)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.tar"]
