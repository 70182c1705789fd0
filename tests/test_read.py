"""Reading hand-made images of odd shapes from every archive source."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from handmade import (
    Layer,
    byte_name,
    directory,
    file,
    hardlink,
    layer_tar,
    oci_layout_files,
    opaque,
    symlink,
    whiteout,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

import layerlab
from layerlab import _cache, _image


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("LAYERLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def shapes() -> list[Layer]:
    """Layers that exercise most merge rules at once."""
    return [
        Layer(
            [
                directory("./etc"),
                file("./etc/passwd", b"root:x:0:0\n"),
                directory("/usr"),
                directory("usr/lib"),
                file("usr/lib/big", b"x" * 5000),
                file("usr/lib/keep", b"k" * 10),
                hardlink("usr/lib/keep-link", "usr/lib/keep", size=10),
                directory("opt"),
                file("opt/old", b"o" * 300),
                directory("conf"),
                file("conf/a", b"a"),
                file("swap", b"file then dir"),
            ],
            created_by="/bin/sh -c #(nop) ADD file:base in /",
        ),
        Layer(
            [
                file("usr/lib/big", b"y" * 4000),
                file("etc/passwd", b"root:x:0:0\n", mode=0o600),
                whiteout("usr/lib/keep"),
                directory("opt"),
                opaque("opt"),
                file("opt/new", b"n"),
                symlink("conf", "/etc"),
                directory("swap"),
                file("swap/inside", b"i" * 7),
            ],
            compression="gzip",
            created_by="/bin/sh -c edit things",
        ),
        Layer(
            [file("etc/motd", b"hello"), whiteout("./usr/lib/big")],
            compression="zstd",
            created_by="/bin/sh -c rm /usr/lib/big",
        ),
    ]


def test_shapes_filesystem_worked_out_by_hand(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "image.tar", shapes())
    image = layerlab.open_image(f"oci-archive:{archive}")
    fs = image.filesystem.set_index("path")
    assert sorted(fs.index) == [
        "conf",
        "etc",
        "etc/motd",
        "etc/passwd",
        "opt",
        "opt/new",
        "swap",
        "swap/inside",
        "usr",
        "usr/lib",
        "usr/lib/keep-link",
    ]
    assert fs.loc["conf", "kind"] == "symlink"
    assert fs.loc["conf", "link_target"] == "/etc"
    assert fs.loc["etc/passwd", "mode"] == 0o600
    assert fs.loc["swap", "kind"] == "dir"
    # The link outlives the path it was made from and still shows its bytes.
    assert fs.loc["usr/lib/keep-link", "size"] == 10
    assert fs.loc["usr/lib/keep-link", "layer"] == 0


def test_shapes_waste_worked_out_by_hand(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "image.tar", shapes())
    image = layerlab.open_image(f"oci-archive:{archive}")
    waste = {
        (row.path, row.layer): (row.reason, row.size, row.hidden_by)
        for row in image.waste.itertuples()
    }
    assert waste == {
        ("usr/lib/big", 0): ("overwritten", 5000, 1),
        ("usr/lib/big", 1): ("deleted", 4000, 2),
        ("etc/passwd", 0): ("metadata", 11, 1),
        ("opt/old", 0): ("deleted", 300, 1),
        ("conf/a", 0): ("deleted", 1, 1),
        ("swap", 0): ("overwritten", 13, 1),
    }
    assert image.metrics.reclaimable_bytes == 5000 + 4000 + 11 + 300 + 1 + 13


def test_shapes_layers_table(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "image.tar", shapes())
    image = layerlab.open_image(f"oci-archive:{archive}")
    layers = image.layers
    assert list(layers["compression"]) == ["none", "gzip", "zstd"]
    assert list(layers["instruction"]) == ["ADD", "RUN", "RUN"]
    # dive counts a hardlink header's size field as content.
    assert layers.loc[0, "content_size"] == 11 + 5000 + 10 + 10 + 300 + 1 + 13
    assert layers.loc[2, "deleted"] == 1
    assert layers.loc[1, "hidden_bytes"] == 4000
    assert list(layers["cumulative_size"]) == list(layers["content_size"].cumsum())
    blob_sizes = [item["size"] for item in _manifest_layers(archive)]
    assert list(layers["compressed_size"]) == blob_sizes


def test_layer_index_counts_from_top_when_negative(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "image.tar", shapes())
    image = layerlab.open_image(f"oci-archive:{archive}")
    blobs = _manifest_layers(archive)
    assert list(image.entries(-1)["path"]) == ["etc/motd", "usr/lib/big"]
    assert image.layer_descriptor(-1)["digest"] == blobs[2]["digest"]
    assert image.layer_descriptor(-3)["digest"] == blobs[0]["digest"]
    for negative, positive in ((-1, 2), (-2, 1), (-3, 0)):
        pd.testing.assert_frame_equal(image.entries(negative), image.entries(positive))
        assert image.layer_descriptor(negative) == image.layer_descriptor(positive)
        with image.open_layer(negative) as stream:
            negative_bytes = stream.read()
        with image.open_layer(positive) as stream:
            assert stream.read() == negative_bytes
    assert len(image.entries(np.int64(1))) == len(image.entries(1))


@pytest.mark.parametrize("index", [3, -4, 100])
def test_layer_index_out_of_range(tmp_path: Path, index: int) -> None:
    archive = write_oci_archive(tmp_path / "image.tar", shapes())
    image = layerlab.open_image(f"oci-archive:{archive}")
    expected = (
        rf"layer index {index} is out of range: the image has 3 layers "
        r"\(valid indexes: 0 to 2, or -3 to -1\)"
    )
    with pytest.raises(IndexError, match=expected):
        image.entries(index)
    with pytest.raises(IndexError, match=expected):
        image.layer_descriptor(index)
    # The check runs at the call, before any with statement enters.
    with pytest.raises(IndexError, match=expected):
        image.open_layer(index)


def test_layer_index_must_be_integer(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "image.tar", shapes())
    image = layerlab.open_image(f"oci-archive:{archive}")
    with pytest.raises(TypeError):
        image.entries(1.0)
    with pytest.raises(TypeError):
        image.open_layer("0")


def test_layer_index_of_one_layer_image(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "one.tar", [Layer([file("a", b"1")])])
    image = layerlab.open_image(f"oci-archive:{archive}")
    assert list(image.entries(-1)["path"]) == ["a"]
    with pytest.raises(IndexError, match="has 1 layer "):
        image.entries(1)


def _manifest_layers(archive: Path) -> list[dict]:
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{digest}"))
    return manifest["layers"]


def _comparable(image: layerlab.Image) -> dict[str, pd.DataFrame]:
    layers = image.layers.drop(
        columns=[
            "digest",
            "media_type",
            "compression",
            "compressed_size",
            "cumulative_compressed_size",
        ]
    )
    return {
        "files": image.files,
        "filesystem": image.filesystem,
        "waste": image.waste,
        "layers": layers,
        "history": image.history,
    }


def test_same_tables_from_every_source(tmp_path: Path) -> None:
    plain = [Layer(layer.entries, created_by=layer.created_by) for layer in shapes()]
    references = [
        f"docker-archive:{write_docker_archive(tmp_path / 'docker.tar', plain)}",
        str(write_oci_archive(tmp_path / "oci.tar", shapes())),
        f"oci:{write_oci_layout(tmp_path / 'layout', shapes())}",
        str(
            write_oci_archive(tmp_path / "docker25.tar", shapes(), docker_manifest=True)
        ),
    ]
    images = [layerlab.open_image(reference, cache=False) for reference in references]
    first = _comparable(images[0])
    for image in images[1:]:
        for name, table in _comparable(image).items():
            pd.testing.assert_frame_equal(
                table, first[name], obj=f"{image.reference} {name}"
            )


def test_repeated_layer_blobs(tmp_path: Path) -> None:
    empty = Layer([directory("tmp")])
    layers = [Layer([file("a", b"1")]), empty, Layer([file("b", b"2")]), empty]
    for mode in ("copy", "same-path", "symlink"):
        path = write_docker_archive(tmp_path / f"{mode}.tar", layers, duplicates=mode)
        image = layerlab.open_image(str(path))
        assert len(image.layers) == 4
        assert image.layers.loc[1, "diff_id"] == image.layers.loc[3, "diff_id"]
        assert sorted(image.filesystem["path"]) == ["a", "b", "tmp"]


def test_media_type_mismatch_detected_from_bytes(tmp_path: Path) -> None:
    layers = [
        Layer(
            [file("f", b"data")],
            compression="gzip",
            media_type="application/vnd.oci.image.layer.v1.tar",
        ),
    ]
    image = layerlab.open_image(str(write_oci_archive(tmp_path / "i.tar", layers)))
    assert image.layers.loc[0, "compression"] == "gzip"
    assert list(image.filesystem["path"]) == ["f"]


def test_empty_gzip_and_empty_blob_layers(tmp_path: Path) -> None:
    layers = [
        Layer([file("f", b"data")]),
        Layer(raw=b"", compression="gzip"),
        Layer(raw=b""),
    ]
    image = layerlab.open_image(str(write_oci_archive(tmp_path / "i.tar", layers)))
    assert list(image.layers["entries"]) == [1, 0, 0]
    assert list(image.layers["compression"]) == ["none", "gzip", "none"]


def test_paths_leaving_root_are_kept_inside(tmp_path: Path) -> None:
    layers = [Layer([file("../../etc/evil", b"x"), file("a/../b", b"y")])]
    image = layerlab.open_image(str(write_oci_archive(tmp_path / "i.tar", layers)))
    assert sorted(image.filesystem["path"]) == ["b", "etc", "etc/evil"]
    assert len(image.warnings) == 1
    assert "../../etc/evil" in image.warnings[0]


def test_history_matched_through_empty_layer(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "i.tar", shapes(), empty_history=2)
    image = layerlab.open_image(str(path))
    assert list(image.layers["history_index"]) == [2, 3, 4]
    assert list(image.history["empty_layer"]) == [True, True, False, False, False]
    assert list(image.history["instruction"]) == ["ENV", "ENV", "ADD", "RUN", "RUN"]


def test_image_without_history(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "i.tar", shapes(), history=False)
    image = layerlab.open_image(str(path))
    assert image.history.empty
    assert image.layers["history_index"].isna().all()
    assert len(image.filesystem) == 11


def test_hashing_off(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "i.tar", shapes())
    image = layerlab.open_image(str(path), hash_content=False)
    assert image.files["hash"].isna().all()
    # Without hashes, the chmod-only rewrite of etc/passwd reads as modified.
    waste = image.waste.set_index(["path", "layer"])
    assert waste.loc[("etc/passwd", 0), "reason"] == "overwritten"


def test_parallel_read_equals_serial(tmp_path: Path, monkeypatch) -> None:
    path = write_oci_archive(tmp_path / "i.tar", shapes())
    serial = layerlab.open_image(str(path), cache=False, workers=1)
    monkeypatch.setattr(_image, "PARALLEL_MIN_BYTES", 0)
    parallel = layerlab.open_image(str(path), cache=False, workers=2)
    pd.testing.assert_frame_equal(serial.files, parallel.files)


class _Recorder:
    def __init__(self) -> None:
        self.totals: list[int] = []

    def start(self, total: int, description: str) -> None:
        self.totals.append(total)

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


def test_cache_reads_only_new_layers(tmp_path: Path) -> None:
    base = Layer([directory("usr"), file("usr/base", b"b" * 1000)])
    first = write_oci_archive(tmp_path / "a.tar", [base, Layer([file("a", b"a" * 10)])])
    second = write_oci_archive(
        tmp_path / "b.tar", [base, Layer([file("b", b"b" * 20)])]
    )
    recorder = _Recorder()
    cold = layerlab.open_image(str(first), progress=recorder)
    assert recorder.totals == [int(cold.layers["compressed_size"].sum())]
    # The whole image is cached now: nothing is read at all.
    again = layerlab.open_image(str(first), progress=recorder)
    assert len(recorder.totals) == 1
    variant = layerlab.open_image(str(second), progress=recorder)
    assert recorder.totals[1] == int(variant.layers.loc[1, "compressed_size"])
    pd.testing.assert_frame_equal(cold.files, again.files)


def _multi_platform_layout(root: Path) -> Path:
    """Write a layout whose index lists an amd64 and an arm64 image."""
    amd = oci_layout_files([Layer([file("arch", b"amd64")])])
    arm = oci_layout_files([Layer([file("arch", b"arm64!")])])
    nested = []
    for files, architecture in ((amd, "amd64"), (arm, "arm64")):
        for name, data in files.items():
            if name.startswith("blobs/"):
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
        descriptor = json.loads(files["index.json"])["manifests"][0]
        descriptor.pop("annotations")
        descriptor["platform"] = {"os": "linux", "architecture": architecture}
        nested.append(descriptor)
    index = {
        "schemaVersion": 2,
        "manifests": nested,
        "mediaType": "application/vnd.oci.image.index.v1+json",
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


def test_multi_platform_index(tmp_path: Path) -> None:
    root = _multi_platform_layout(tmp_path / "layout")
    arm = layerlab.open_image(f"oci:{root}", platform="linux/arm64")
    amd = layerlab.open_image(f"oci:{root}", platform="linux/amd64")
    assert arm.filesystem.loc[0, "size"] == 6
    assert amd.filesystem.loc[0, "size"] == 5
    with pytest.raises(layerlab.PlatformNotFoundError, match="linux/s390x"):
        layerlab.open_image(f"oci:{root}", platform="linux/s390x")


# Errors: each names what was wrong and where.


def test_missing_file() -> None:
    with pytest.raises(layerlab.ReferenceNotFoundError, match="missing.tar"):
        layerlab.open_image("missing.tar")


def test_tar_that_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(layer_tar([file("etc/hostname", b"x")]))
    with pytest.raises(layerlab.InvalidImageError, match="neither manifest.json"):
        layerlab.open_image(str(path))


def test_registry_reference_rejected() -> None:
    with pytest.raises(layerlab.InvalidReferenceError, match="not supported yet"):
        layerlab.open_image("docker://example.invalid/app:1")


def test_truncated_layer(tmp_path: Path) -> None:
    tar = layer_tar([file("big", b"z" * 5000)])
    path = write_oci_archive(tmp_path / "i.tar", [Layer(raw=tar[:3000])])
    with pytest.raises(layerlab.LayerError, match="big") as caught:
        layerlab.open_image(str(path))
    assert caught.value.image == str(path)
    assert caught.value.layer.startswith("0 (sha256:")


def test_corrupt_gzip_layer(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(layer_tar([file("f", os.urandom(4000))])))
    data[40] ^= 0xFF
    path = write_oci_archive(tmp_path / "i.tar", [Layer(raw=bytes(data))])
    with pytest.raises(layerlab.LayerError):
        layerlab.open_image(str(path))


def test_digest_mismatch(tmp_path: Path) -> None:
    path = write_oci_archive(
        tmp_path / "i.tar", [Layer([file("f", b"x")], corrupt_digest=True)]
    )
    with pytest.raises(layerlab.DigestMismatchError, match="blob digest"):
        layerlab.open_image(str(path))


def test_diff_id_mismatch(tmp_path: Path) -> None:
    path = write_docker_archive(
        tmp_path / "i.tar", [Layer([file("f", b"x")], corrupt_diff_id=True)]
    )
    with pytest.raises(layerlab.DigestMismatchError, match="diff_id"):
        layerlab.open_image(str(path))


def test_absurd_entry_size(tmp_path: Path) -> None:
    tar = bytearray(layer_tar([file("huge", b"")], format=tarfile.GNU_FORMAT))
    # A base-256 size field claiming 2**60 bytes, with a valid checksum.
    tar[124:136] = b"\x80" + (2**60).to_bytes(11, "big")
    tar[148:156] = b" " * 8
    tar[148:156] = b"%06o\0 " % sum(tar[:512])
    path = write_oci_archive(tmp_path / "i.tar", [Layer(raw=bytes(tar))])
    with pytest.raises(
        layerlab.InvalidEntryError, match="absurd|claims a size"
    ) as caught:
        layerlab.open_image(str(path))
    assert caught.value.entry == "huge"


def test_engine_not_running(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(layerlab.EngineError, match="DOCKER_HOST"):
        layerlab.open_image("docker-daemon:layerlab-test/none:latest")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    return subprocess.run(
        [sys.executable, "-m", "layerlab.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    "reference",
    ["missing.tar", "notimage.tar", "corrupt.tar", "docker-daemon:app", "docker://r/x"],
)
def test_cli_errors_one_line_no_output(tmp_path: Path, reference: str) -> None:
    (tmp_path / "notimage.tar").write_bytes(layer_tar([file("x", b"1")]))
    write_oci_archive(
        tmp_path / "corrupt.tar", [Layer([file("f")], corrupt_digest=True)]
    )
    before = sorted(os.listdir(tmp_path))
    result = _cli("analyze", reference, "--parquet", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("layerlab: error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_cli_json_and_tables(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "i.tar", shapes())
    result = _cli("analyze", str(path), "--json", "--csv", "tables", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["reclaimable_bytes"] == 9325
    assert [layer["instruction"] for layer in document["layers"]] == [
        "ADD",
        "RUN",
        "RUN",
    ]
    for key in ("size_bytes", "efficiency", "inefficient_bytes", "user_wasted_percent"):
        assert key in document
    written = sorted(os.listdir(tmp_path / "tables"))
    assert written == [
        "files.csv",
        "filesystem.csv",
        "history.csv",
        "layers.csv",
        "waste.csv",
    ]
    files = pd.read_csv(tmp_path / "tables" / "files.csv")
    assert len(files) == len(layerlab.open_image(str(path)).files)


def test_cached_image_gives_same_metrics(tmp_path: Path) -> None:
    path = str(write_oci_archive(tmp_path / "i.tar", shapes()))
    fresh = layerlab.open_image(path, cache=False).metrics
    first = layerlab.open_image(path).metrics
    cached = layerlab.open_image(path).metrics
    for metrics in (first, cached):
        assert metrics.dive == fresh.dive
        assert metrics.reclaimable_bytes == fresh.reclaimable_bytes
        pd.testing.assert_frame_equal(
            metrics.dive.inefficiencies.reset_index(drop=True),
            fresh.dive.inefficiencies.reset_index(drop=True),
            check_dtype=False,
        )


def test_path_objects_accepted(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "i.tar", shapes())
    assert len(layerlab.open_image(path).layers) == 3


def test_non_utf8_name_is_escaped(tmp_path: Path) -> None:
    tar = bytearray(
        layer_tar([file("badXX.txt", b"data")], format=tarfile.USTAR_FORMAT)
    )
    # Replace XX with two bytes that are not UTF-8, and fix the checksum.
    at = tar.index(b"badXX.txt")
    tar[at + 3 : at + 5] = b"\xff\xfe"
    tar[148:156] = b" " * 8
    tar[148:156] = b"%06o\0 " % sum(tar[:512])
    path = write_oci_archive(tmp_path / "i.tar", [Layer(raw=bytes(tar))])
    image = layerlab.open_image(str(path))
    assert list(image.filesystem["path"]) == ["bad\ufffdxff\ufffdxfe.txt"]
    result = _cli("analyze", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layers"][0]["added"] == 1


def test_escape_like_name_is_another_path(tmp_path: Path) -> None:
    # A name with a literal backslash must not merge with the escape of
    # the byte 0xe9.
    layer = Layer(
        [
            file(byte_name(b"caf\xe9.txt"), b"x" * 5000),
            file("caf\\xe9.txt", b"y" * 5001),
        ]
    )
    path = write_oci_archive(tmp_path / "i.tar", [layer])
    image = layerlab.open_image(str(path), cache=False)
    assert sorted(image.filesystem["path"]) == ["caf\\xe9.txt", "caf\ufffdxe9.txt"]
    assert image.files["visible"].all()
    assert image.metrics.reclaimable_bytes == 0
    assert image.metrics.inefficient_bytes == 0
    assert image.waste.empty


def test_non_utf8_names_survive_cache(tmp_path: Path) -> None:
    names = Layer(
        [
            directory(byte_name(b"d\xff")),
            file(byte_name(b"d\xff/caf\xe9.txt"), b"1"),
            file("caf\\xe9.txt", b"2"),
            file("r\ufffd", b"3"),
            symlink(byte_name(b"l\xfe"), byte_name(b"to\xe9")),
        ]
    )
    first = write_oci_archive(tmp_path / "a.tar", [names])
    second = write_oci_archive(tmp_path / "b.tar", [names, Layer([file("b", b"b")])])

    expected = [
        "caf\\xe9.txt",
        "d\ufffdxff",
        "d\ufffdxff/caf\ufffdxe9.txt",
        "l\ufffdxfe",
        "r\ufffd\ufffd",
    ]
    cold = layerlab.open_image(str(first))
    cached = _cache.load(str(cold.layers.loc[0, "diff_id"]), hash_content=True)
    assert cached is not None
    assert sorted(cached.entries["path"]) == expected

    # The whole image comes from the image cache, and the variant's first
    # layer from the layer cache.
    again = layerlab.open_image(str(first))
    variant = layerlab.open_image(str(second))
    for image in (cold, again, variant):
        entries = image.entries(0)
        assert sorted(entries["path"]) == expected
        links = entries.loc[entries["kind"] == "symlink", "link_target"]
        assert list(links) == ["to\ufffdxe9"]


def test_cli_unwritable_output_one_line(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "i.tar", shapes())
    result = _cli(
        "analyze", str(path), "--csv", str(tmp_path / "i.tar" / "x"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("layerlab: error: ")
    assert "Traceback" not in result.stderr


def test_cli_json_one_layer_is_valid(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "i.tar", [Layer([file("a", b"1")])])
    result = _cli("analyze", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["user_wasted_percent"] is None
