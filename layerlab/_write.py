"""Write images as OCI archives or docker archives.

Blobs are written to a staging directory beside the output while their
digests are computed, then packed into one tar that replaces the output in
a single rename, so the output is either complete or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import zstandard

from ._errors import DigestMismatchError, EngineError, OptionError

if TYPE_CHECKING:
    from ._image import Image
    from ._squash import SquashResult

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
_CHUNK = 1 << 20


@contextlib.contextmanager
def replacing(target: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside ``target`` that replaces it on success.

    If the block raises, KeyboardInterrupt included, ``target`` keeps its
    previous content and the temporary file is removed. A killed process
    leaves the temporary file behind, never a partial ``target``. The new file gets
    the mode a newly created file would get under the current umask. An
    OSError names ``target``, not the temporary file the user never asked for.
    """
    directory, name = os.path.split(os.path.abspath(target))
    try:
        handle, temporary = tempfile.mkstemp(
            dir=directory, prefix=f".{name}.", suffix=".tmp"
        )
    except OSError as error:
        raise _naming(error, target) from error
    os.close(handle)
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except OSError as error:
        _remove(temporary)
        raise _naming(error, target) from error
    except BaseException:
        _remove(temporary)
        raise


def _naming(error: OSError, target: str | os.PathLike[str]) -> OSError:
    return type(error)(error.errno, error.strerror, os.fspath(target))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def validate_output(path: str, image: Image) -> str:
    """Return ``path`` made absolute, after checking it is a place to write."""
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise OptionError(f"output directory {directory} does not exist")
    if os.path.isdir(target):
        raise OptionError(f"output {path} is a directory; give a file name")
    check_not_input(target, image.reference, as_given=path)
    return target


def check_not_input(
    target: str | os.PathLike[str], reference: str, *, as_given: object = None
) -> None:
    """Raise OptionError if writing ``target`` would change the image ``reference``.

    That is when ``target`` is the archive itself, under any name, or lies
    inside the OCI layout directory the image is read from.
    """
    source = input_path(reference)
    if source is None:
        return
    as_given = target if as_given is None else as_given
    target = os.path.abspath(target)
    if os.path.exists(target) and os.path.samefile(source, target):
        raise OptionError(
            f"output {as_given} is the input image {reference}; choose another file"
        )
    if os.path.isdir(source):
        inside = os.path.commonpath(
            [os.path.realpath(source), os.path.realpath(target)]
        )
        if inside == os.path.realpath(source):
            raise OptionError(
                f"output {as_given} is inside the input image {reference}; "
                "choose a file outside it"
            )


def input_path(reference: str) -> str | None:
    """Return the file or directory that ``reference`` reads, if it names one.

    As when the reference is opened, the path is the longest part before a
    ``:`` that exists, so ``app.tar:web:1.0`` reads ``app.tar``.
    """
    from ._refs import path_candidates

    for prefix in ("docker-archive:", "oci-archive:", "oci:"):
        if reference.startswith(prefix):
            reference = reference[len(prefix) :]
            break
    for path, _ in path_candidates(reference):
        if path and os.path.exists(path):
            return path
    return None


class _BlobSink:
    """A file that hashes the uncompressed bytes and the stored bytes."""

    def __init__(self, handle: Any, compression: str) -> None:
        self._handle = handle
        self._compression = compression
        self.diff_id = hashlib.sha256()
        self.digest = hashlib.sha256()
        self.size = 0
        if compression == "gzip":
            self._compressor: Any = zlib.compressobj(
                6, zlib.DEFLATED, 16 + zlib.MAX_WBITS
            )
        elif compression == "zstd":
            self._compressor = zstandard.ZstdCompressor(level=3).compressobj()
        else:
            self._compressor = None

    def write(self, data: bytes) -> int:
        self.diff_id.update(data)
        self._store(self._compressor.compress(data) if self._compressor else data)
        return len(data)

    def _store(self, data: bytes) -> None:
        if data:
            self.digest.update(data)
            self._handle.write(data)
            self.size += len(data)

    def close(self) -> None:
        if self._compressor is not None:
            self._store(self._compressor.flush())


class ImageWriter:
    """Collect blobs and write one image archive atomically."""

    def __init__(self, output: str, *, format: str, compression: str) -> None:
        self._output = output
        self._format = format
        # docker save stores layers uncompressed, and older engines load only those.
        self._compression = "none" if format == "docker" else compression
        try:
            self._staging = tempfile.mkdtemp(
                prefix=".layerlab-", dir=os.path.dirname(output) or "."
            )
        except OSError as error:
            raise _naming(error, output) from error
        self._blobs: dict[str, str] = {}

    def __enter__(self) -> ImageWriter:  # noqa: PYI034
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)
        # The staging directory is ours, not the user's: name the output.
        filename = getattr(error, "filename", None)
        if isinstance(error, OSError) and str(filename).startswith(self._staging):
            raise _naming(error, self._output) from error

    def _new_blob_path(self) -> str:
        handle, path = tempfile.mkstemp(dir=self._staging, suffix=".blob")
        os.close(handle)
        return path

    def _keep(self, path: str, digest: str) -> None:
        self._blobs.setdefault(digest, path)

    def add_layer(self, write: Callable[[Any], None]) -> dict[str, Any]:
        """Store a layer whose uncompressed tar ``write(sink)`` produces."""
        path = self._new_blob_path()
        with open(path, "wb") as handle:
            sink = _BlobSink(handle, self._compression)
            write(sink)
            sink.close()
        digest = f"sha256:{sink.digest.hexdigest()}"
        self._keep(path, digest)
        return {
            "mediaType": LAYER_TYPES[self._compression],
            "digest": digest,
            "size": sink.size,
            "diff_id": f"sha256:{sink.diff_id.hexdigest()}",
        }

    def copy_layer(self, image: Image, index: int) -> dict[str, Any]:
        """Store layer ``index`` of ``image`` unchanged (uncompressed for docker)."""
        row = image.layers.iloc[index]
        if self._format == "docker" and row["compression"] != "none":
            return self._decompress_layer(image, index)
        path = self._new_blob_path()
        with image._source.openers[index].open() as blob, open(path, "wb") as handle:
            shutil.copyfileobj(blob, handle, _CHUNK)
        digest = _file_digest(path)
        expected = str(row["digest"])
        if digest != expected:
            raise DigestMismatchError(
                f"blob digest is {digest}, expected {expected}; the blob changed "
                "after the image was read",
                image=image.reference,
                layer=str(index),
            )
        self._keep(path, digest)
        compression = str(row["compression"])
        return {
            "mediaType": LAYER_TYPES[compression],
            "digest": digest,
            "size": os.path.getsize(path),
            "diff_id": str(row["diff_id"]),
        }

    def _decompress_layer(self, image: Image, index: int) -> dict[str, Any]:
        def write(sink: Any) -> None:
            with image.open_layer(index) as stream:
                shutil.copyfileobj(stream, sink, _CHUNK)

        return self.add_layer(write)

    def finish(
        self, config: dict[str, Any], layers: list[dict[str, Any]], *, tag: str | None
    ) -> None:
        """Write the config and manifest, pack the archive and move it in place."""
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"
        files = (
            self._docker_files(config_bytes, config_digest, layers, tag)
            if self._format == "docker"
            else self._oci_files(config_bytes, config_digest, layers, tag)
        )
        packed = os.path.join(self._staging, "image.tar")
        with tarfile.open(packed, "w", format=tarfile.PAX_FORMAT) as archive:
            for name, content in files:
                _add(archive, name, content)
        os.replace(packed, self._output)

    def _oci_files(
        self,
        config_bytes: bytes,
        config_digest: str,
        layers: list[dict[str, Any]],
        tag: str | None,
    ) -> list[tuple[str, Any]]:
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": [
                {key: layer[key] for key in ("mediaType", "digest", "size")}
                for layer in layers
            ],
        }
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        manifest_digest = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}"
        descriptor: dict[str, Any] = {
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest,
            "size": len(manifest_bytes),
        }
        if tag:
            descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
        files: list[tuple[str, Any]] = [
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", json.dumps(index).encode()),
            (_blob_name(config_digest), config_bytes),
            (_blob_name(manifest_digest), manifest_bytes),
        ]
        written = set()
        for layer in layers:
            if layer["digest"] not in written:
                written.add(layer["digest"])
                files.append(
                    (_blob_name(layer["digest"]), self._blobs[layer["digest"]])
                )
        return files

    def _docker_files(
        self,
        config_bytes: bytes,
        config_digest: str,
        layers: list[dict[str, Any]],
        tag: str | None,
    ) -> list[tuple[str, Any]]:
        config_name = f"{config_digest.partition(':')[2]}.json"
        names = [f"{layer['digest'].partition(':')[2]}/layer.tar" for layer in layers]
        manifest = [
            {
                "Config": config_name,
                "RepoTags": [repo_tag(tag)] if tag else [],
                "Layers": names,
            }
        ]
        files: list[tuple[str, Any]] = [(config_name, config_bytes)]
        written = set()
        for name, layer in zip(names, layers):
            if name not in written:
                written.add(name)
                files.append((name, self._blobs[layer["digest"]]))
        files.append(("manifest.json", json.dumps(manifest).encode()))
        return files


def repo_tag(tag: str) -> str:
    """Return ``tag`` as ``NAME:TAG``, adding ``:latest`` when it has no tag.

    ``docker load`` rejects a ``RepoTags`` entry without a tag.
    """
    name = tag.rpartition("/")[2]
    return tag if ":" in name or "@" in name else f"{tag}:latest"


def _blob_name(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _add(archive: tarfile.TarFile, name: str, content: Any) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if isinstance(content, bytes):
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
        return
    info.size = os.path.getsize(content)
    with open(content, "rb") as handle:
        archive.addfile(info, handle)


def load_into_engine(
    image: Image, result: SquashResult, *, tag: str | None, message: str | None
) -> str:
    """Load the squashed image into the Docker Engine; return its tag or id.

    The engine loads docker archives, so an OCI result is written again in
    that form to a temporary file first.
    """
    from ._daemon import connect
    from ._squash import squash

    archive = result.output
    temporary = None
    if result.format != "docker":
        handle, temporary = tempfile.mkstemp(prefix="layerlab-", suffix=".tar")
        os.close(handle)
        squash(
            image,
            output=temporary,
            first=result.first,
            last=result.last,
            format="docker",
            tag=tag,
            message=message,
        )
        archive = temporary
    client = connect()
    try:
        with open(archive, "rb") as data:
            loaded = client.images.load(data)
    except Exception as error:  # noqa: BLE001 - the SDK raises unrelated types here
        raise EngineError(
            f"docker load failed: {error}", image=image.reference
        ) from None
    finally:
        client.close()
        if temporary:
            os.unlink(temporary)
    if tag:
        return repo_tag(tag)
    return loaded[0].id if loaded else ""
