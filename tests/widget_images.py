"""Hand-made images for the widget tests, with contents known by construction.

``small`` has four layers: a base, a step that adds, rewrites, re-owns and
rewrites identically, a step that deletes a directory, and a step that adds
an application and deletes one library. ``after`` is ``small`` with the
last layer changed, for the comparison view.
"""

from __future__ import annotations

from pathlib import Path

from handmade import Layer, directory, file, whiteout, write_docker_archive

BASE_COMMAND = "ADD rootfs.tar / # buildkit"
INSTALL_COMMAND = "RUN /bin/sh -c apt-get install -y libnew && chmod 755 /usr/bin/tool"
CLEAN_COMMAND = "RUN /bin/sh -c rm -rf /var/cache # buildkit"
APP_COMMAND = "COPY app /app # buildkit"

SIZES = {
    "etc/passwd": 100,
    "etc/hosts": 50,
    "usr/bin/tool": 30_000,
    "usr/lib/libbig.so": 200_000,
    "usr/lib/libsmall.so": 5_000,
    "var/cache/apt.bin": 120_000,
    "etc/passwd@1": 120,
    "usr/lib/libnew.so": 80_000,
    "var/cache/tmp.dat": 60_000,
    "app/main.py": 3_000,
    "app/data/big.bin": 150_000,
}
"""Content bytes of each file; ``PATH@1`` is the version layer 1 writes."""


def _content(key: str, fill: bytes = b"x") -> bytes:
    return fill * SIZES[key]


def base_layer() -> Layer:
    """Return layer 0: a small root filesystem."""
    entries = [directory(name) for name in ("etc", "usr", "usr/bin", "usr/lib")]
    entries += [directory("var"), directory("var/cache")]
    for key in (
        "etc/passwd",
        "etc/hosts",
        "usr/bin/tool",
        "usr/lib/libbig.so",
        "usr/lib/libsmall.so",
        "var/cache/apt.bin",
    ):
        entries.append(file(key, _content(key)))
    return Layer(entries, created_by=BASE_COMMAND)


def install_layer() -> Layer:
    """Return layer 1: one file added in each of usr/lib and var/cache,
    etc/passwd modified, etc/hosts rewritten identically, usr/bin/tool
    re-owned (mode only)."""
    return Layer(
        [
            directory("etc"),
            file("etc/passwd", _content("etc/passwd@1", b"y")),
            file("etc/hosts", _content("etc/hosts")),
            directory("usr"),
            directory("usr/bin"),
            file("usr/bin/tool", _content("usr/bin/tool"), mode=0o755),
            directory("usr/lib"),
            file("usr/lib/libnew.so", _content("usr/lib/libnew.so", b"n")),
            file("var/cache/tmp.dat", _content("var/cache/tmp.dat", b"t")),
        ],
        created_by=INSTALL_COMMAND,
    )


def clean_layer() -> Layer:
    """Return layer 2: var/cache removed with everything in it."""
    return Layer([whiteout("var/cache")], created_by=CLEAN_COMMAND)


def app_layer(*, main: bytes | None = None) -> Layer:
    """Return layer 3: the application added, usr/lib/libsmall.so removed."""
    return Layer(
        [
            directory("app"),
            file("app/main.py", main if main is not None else _content("app/main.py")),
            directory("app/data"),
            file("app/data/big.bin", _content("app/data/big.bin", b"b")),
            whiteout("usr/lib/libsmall.so"),
        ],
        created_by=APP_COMMAND,
    )


def small_layers() -> list[Layer]:
    """Return the four layers of the ``small`` image."""
    return [base_layer(), install_layer(), clean_layer(), app_layer()]


def after_layers() -> list[Layer]:
    """Return ``small`` with a longer app/main.py and a new app/extra.txt."""
    app = app_layer(main=b"m" * 4_500)
    extra = Layer([file("app/extra.txt", b"e" * 700)], created_by="COPY extra /app")
    return [base_layer(), install_layer(), clean_layer(), app, extra]


def write_small_image(path: Path) -> Path:
    """Write the ``small`` image as a docker archive at ``path``."""
    return write_docker_archive(path, small_layers(), tag="layerlab-test/small:1")


def write_after_image(path: Path) -> Path:
    """Write the ``after`` image as a docker archive at ``path``."""
    return write_docker_archive(path, after_layers(), tag="layerlab-test/small:2")
