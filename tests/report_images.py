"""Hand-made images for the plot and report tests: a large one and a hostile one.

Both are written with :mod:`handmade`, so their contents, and the numbers
the tests expect, are known by construction.
"""

from __future__ import annotations

import random
from pathlib import Path

from handmade import Layer, directory, file, whiteout, write_oci_archive

LARGE_FILES = 100_000
LARGE_DIRECTORIES = 500

# File names and a command that a report must show as text. Each name is
# one path component; NAME_WITH_SLASHES spans several directories so that
# the full path contains a closing script tag.
HOSTILE_NAMES = (
    "<img src=x onerror=alert(1)>.txt",
    "<svg onload=alert(2)>",
    "\"double\" 'single' & ampersand &amp; &lt;.txt",
    "naïve – 日本語 – ünïcödé.txt",
    "long-" + "é" * 60 + "-name-over-100-bytes.txt",
    "<b>bold<br>break <a href=javascript:alert(7)>link",
)
NAME_WITH_SLASHES = "x</script><script>alert(4)</script>.txt"
HOSTILE_COMMAND = (
    "/bin/sh -c echo '<script>alert(5)</script><img src=x onerror=alert(6)>'"
    " > \"/tmp/</script>.txt\" && rm -f '/tmp/<b>gone</b>.txt'"
)


def large_layers(files: int = LARGE_FILES) -> list[Layer]:
    """Return three layers: many small files, a rewrite of some, a deletion.

    Layer 0 writes ``files`` files of 0 to 599 bytes in ``LARGE_DIRECTORIES``
    directories, layer 1 rewrites every 50th file, and layer 2 deletes the
    directory ``usr/share/pkg007``.
    """
    generator = random.Random(20240601)
    per_directory = max(1, files // LARGE_DIRECTORIES)
    base = [directory("usr"), directory("usr/share")]
    rewrites = []
    for index in range(files):
        folder = f"usr/share/pkg{index // per_directory:03d}"
        if index % per_directory == 0:
            base += [directory(folder), directory(f"{folder}/data")]
        name = f"{folder}/data/file{index:06d}.txt"
        base.append(file(name, b"x" * generator.randrange(0, 600)))
        if index % 50 == 0:
            rewrites.append(file(name, b"y" * generator.randrange(1, 900)))
    return [
        Layer(base, compression="gzip", created_by="COPY rootfs / # buildkit"),
        Layer(
            rewrites,
            compression="gzip",
            created_by="RUN /bin/sh -c sed -i s/x/y/ /usr/share/*/data/*.txt",
        ),
        Layer(
            [whiteout("usr/share/pkg007")],
            compression="gzip",
            created_by="RUN /bin/sh -c rm -rf /usr/share/pkg007 # buildkit",
        ),
    ]


def write_large_image(path: Path, files: int = LARGE_FILES) -> Path:
    """Write the large image as an OCI archive at ``path``."""
    return write_oci_archive(path, large_layers(files))


def hostile_layers() -> list[Layer]:
    """Return layers whose paths and commands are HTML and script.

    Layer 0 writes each hostile name as a 40 kB file under ``data/`` and
    a file under ``waste/`` that layer 1 deletes, so that the names reach
    the treemap, the waste table and the per-layer file tables.
    """
    entries = [directory("data"), directory("waste")]
    for index, name in enumerate(HOSTILE_NAMES):
        entries.append(file(f"data/{name}", bytes([65 + index]) * 40_000))
        entries.append(file(f"waste/{name}", b"w" * 30_000))
    parts = NAME_WITH_SLASHES.split("/")
    for depth in range(1, len(parts)):
        entries.append(directory("data/" + "/".join(parts[:depth])))
    entries.append(file("data/" + NAME_WITH_SLASHES, b"s" * 50_000))
    return [
        Layer(entries, created_by="COPY <b>context</b> / # buildkit"),
        Layer(
            [whiteout(f"waste/{name}") for name in HOSTILE_NAMES],
            created_by=HOSTILE_COMMAND,
        ),
    ]


def write_hostile_image(path: Path) -> Path:
    """Write the hostile image as an OCI archive at ``path``."""
    return write_oci_archive(path, hostile_layers())
