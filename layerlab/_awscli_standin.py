"""The AWS CLI v2 installer zip, or a stand-in served on 127.0.0.1.

The scenario "the rm that does not shrink" downloads the AWS CLI v2 zip in a
``RUN`` step, unpacks it and runs ``./aws/install``. Where the download site
cannot be reached, :func:`awscli_download` serves a stand-in zip of the same
shape from an HTTP server on 127.0.0.1 for the length of the build, and the
build passes its URL in the ``AWSCLI_URL`` build argument. A build reaches
127.0.0.1 of the host only with host networking.

The stand-in is made from Python wheels downloaded with pip, namely the
AWS CLI v1 (``awscli``), ``botocore`` and the libraries that AWS CLI v2
bundles. Its layout follows the real zip: ``aws/install`` and
``aws/dist/``, where ``dist`` contains the unpacked wheels and two shell
scripts, ``aws`` and ``aws_completer``. The install script copies ``dist`` to
``/usr/local/aws-cli/v2/<version>/dist`` and links ``/usr/local/bin/aws``, as
the real one does. The stand-in ``aws`` implements ``--version`` only.

Sizes (x86_64, the wheels pinned in ``WHEELS``): about 51 MB zipped and
195 MB unpacked, 246 MB together. In the figures of the talk this scenario
comes from, the zip and the unpacked folder of the real AWS CLI v2 took
271 MB together (777 MB with the removal in a separate step, 506 MB with it
in the same step), so the stand-in is about a tenth smaller.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ._errors import LayerlabError, OptionError

logger = logging.getLogger("layerlab")

OFFICIAL_URL = "https://awscli.amazonaws.com/awscli-exe-linux-{arch}.zip"
STAND_IN_VERSION = "2.0.0-layerlab-stand-in"

# Seconds the HEAD request to the download site may take before the
# stand-in is used.
REACHABILITY_TIMEOUT = 3.0

# Engine architecture (docker info) to the architecture in the zip's name.
ZIP_ARCHITECTURES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
}

# Pinned, so that the stand-in has the same size wherever it is made. The
# binary wheels are those for CPython 3.12, which AWS CLI v2 bundles too.
WHEELS = (
    "awscli==1.46.3",
    "botocore==1.44.8",
    "s3transfer==0.19.3",
    "awscrt==0.38.1",
    "cryptography==50.0.2",
    "cffi==2.1.1",
    "ruamel.yaml==0.19.1",
    "ruamel.yaml.clib==0.2.15",
    "prompt-toolkit==3.0.53",
    "wcwidth==0.9.4",
    "distro==1.9.0",
    "colorama==0.4.6",
    "docutils==0.23.1",
    "python-dateutil==4.0.0",
    "jmespath==1.1.0",
    "urllib3==2.8.0",
    "six==1.17.0",
    "pyyaml==6.0.4",
)
PYTHON_VERSION = "3.12"

# Raise when the stand-in format changes, so that cached zips are remade.
FORMAT_VERSION = 1

# Every file of the zip that is not from a wheel gets this time stamp, so the
# same wheels give a byte-identical zip.
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)

INSTALL_SCRIPT = """\
#!/bin/sh
# Installer of the layerlab stand-in for the AWS CLI v2. It installs like the
# real one (a versioned copy of dist/ and links in the bin directory), but
# the installed aws command handles --version only.
set -eu
install_dir=/usr/local/aws-cli
bin_dir=/usr/local/bin
update=false
while [ $# -gt 0 ]; do
  case "$1" in
    -i|--install-dir) install_dir=$2; shift 2 ;;
    -b|--bin-dir) bin_dir=$2; shift 2 ;;
    -u|--update) update=true; shift ;;
    *) echo "install: unknown option $1 (options: -i DIR, -b DIR, -u)" >&2; exit 2 ;;
  esac
done
source_dir=$(cd "$(dirname "$0")" && pwd)
version=@VERSION@
target="$install_dir/v2/$version"
if [ -e "$install_dir/v2/current" ] && [ "$update" != true ]; then
  echo "install: $install_dir/v2/current exists; run again with --update" >&2
  exit 1
fi
mkdir -p "$target/bin" "$bin_dir"
rm -rf "$target/dist"
cp -a "$source_dir/dist" "$target/dist"
ln -sfn ../dist/aws "$target/bin/aws"
ln -sfn ../dist/aws_completer "$target/bin/aws_completer"
ln -sfn "$target" "$install_dir/v2/current"
ln -sfn "$install_dir/v2/current/bin/aws" "$bin_dir/aws"
ln -sfn "$install_dir/v2/current/bin/aws_completer" "$bin_dir/aws_completer"
echo "installed the AWS CLI stand-in $version; run $bin_dir/aws --version"
"""

AWS_SCRIPT = """\
#!/bin/sh
# Stand-in for the AWS CLI v2 executable, made by layerlab.
if [ "${1:-}" = "--version" ]; then
  echo "aws-cli/@VERSION@ (stand-in made by layerlab from Python wheels)"
  exit 0
fi
echo "aws: this is a stand-in made by layerlab; it answers --version only" >&2
exit 2
"""

COMPLETER_SCRIPT = """\
#!/bin/sh
# Stand-in for the AWS CLI v2 completer, made by layerlab: completes nothing.
exit 0
"""

README = """\
Stand-in for the AWS CLI v2 installer zip, made by layerlab
=============================================================

The real zip could not be downloaded when this one was made, so layerlab made
this one with the same layout (aws/install, aws/dist/) and a similar size, to
teach how image layers grow. It contains no working AWS CLI: dist/ holds the
unpacked files of these Python wheels from PyPI, each with its license in its
*.dist-info directory:

@WHEELS@
"""


@dataclass(frozen=True)
class AwscliDownload:
    """The source of the AWS CLI zip for a build.

    Attributes:
        url: the URL to pass in the ``AWSCLI_URL`` build argument.
        stand_in: whether ``url`` serves the stand-in zip made by layerlab.
        official_url: the download site's URL for this architecture.
        zip_path: the stand-in zip on this machine; None for the real one.
        zip_bytes: size of the stand-in zip; None for the real one.
        unpacked_bytes: bytes of the stand-in's files once unpacked; None
            for the real one.
    """

    url: str
    stand_in: bool
    official_url: str
    zip_path: Path | None = None
    zip_bytes: int | None = None
    unpacked_bytes: int | None = None

    @property
    def description(self) -> str:
        """One sentence saying which zip the build downloads."""
        if not self.stand_in:
            return f"the real AWS CLI v2 zip from {self.official_url}"
        return (
            f"a stand-in zip made by layerlab from Python wheels "
            f"({_mb(self.zip_bytes)} zipped, {_mb(self.unpacked_bytes)} unpacked), "
            f"served on {self.url}, because {self.official_url} was unreachable"
        )


def _mb(size: int | None) -> str:
    return "unknown size" if size is None else f"{size / 1e6:.0f} MB"


def official_url(architecture: str) -> str:
    """Return the AWS CLI v2 download URL for an engine ``architecture``."""
    return OFFICIAL_URL.format(arch=_zip_architecture(architecture))


def _zip_architecture(architecture: str) -> str:
    try:
        return ZIP_ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(sorted(ZIP_ARCHITECTURES))
        raise OptionError(
            f"no AWS CLI v2 build for the architecture {architecture!r}; "
            f"known architectures: {known}"
        ) from None


def is_reachable(url: str, *, timeout: float = REACHABILITY_TIMEOUT) -> bool:
    """Send a HEAD request to ``url`` and return whether it succeeded in time."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reachable = 200 <= response.status < 400
    except (urllib.error.URLError, OSError, ValueError) as error:
        logger.info("HEAD %s failed: %s", url, error)
        return False
    logger.info("HEAD %s returned %d", url, response.status)
    return reachable


@contextlib.contextmanager
def awscli_download(
    *,
    architecture: str = "x86_64",
    stand_in: bool | None = None,
    timeout: float = REACHABILITY_TIMEOUT,
) -> Iterator[AwscliDownload]:
    """Yield where a build can download the AWS CLI v2 zip from.

    With ``stand_in`` None, the download site is tried with a HEAD request of
    at most ``timeout`` seconds. When it responds, the real URL is yielded and
    nothing is served. Otherwise, or with ``stand_in`` True, the stand-in zip
    is made (once, then kept in the layerlab cache directory) and served on
    127.0.0.1 until the block ends. The server's port is derived from the
    architecture, so the URL, and with it the build cache of the download
    step, stays the same from one build to the next.
    """
    url = official_url(architecture)
    if stand_in is None:
        stand_in = not is_reachable(url, timeout=timeout)
    if not stand_in:
        yield AwscliDownload(url=url, stand_in=False, official_url=url)
        return

    zip_path = stand_in_zip(architecture=architecture)
    unpacked = _unpacked_bytes(zip_path)
    with _serve(zip_path, architecture) as served_url:
        yield AwscliDownload(
            url=served_url,
            stand_in=True,
            official_url=url,
            zip_path=zip_path,
            zip_bytes=zip_path.stat().st_size,
            unpacked_bytes=unpacked,
        )


def stand_in_zip(*, architecture: str = "x86_64") -> Path:
    """Make the stand-in zip for ``architecture`` unless cached, and return it.

    The zip is kept under the layerlab cache directory (``LAYERLAB_CACHE_DIR``
    or the user cache directory). Raises LayerlabError when pip cannot
    download the wheels.
    """
    zip_arch = _zip_architecture(architecture)
    key = hashlib.sha256(
        "\0".join((str(FORMAT_VERSION), zip_arch, PYTHON_VERSION, *WHEELS)).encode()
    ).hexdigest()[:16]
    directory = Path(_cache_base(), "awscli-stand-in", key)
    target = directory / f"awscli-exe-linux-{zip_arch}.zip"
    if target.is_file():
        return target

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="layerlab-awscli-") as scratch:
        wheels = _download_wheels(Path(scratch), zip_arch)
        partial = directory / f".{target.name}.partial"
        _write_zip(partial, wheels)
        os.replace(partial, target)
    logger.info("made the AWS CLI stand-in %s", target)
    return target


def _cache_base() -> str:
    return os.environ.get("LAYERLAB_CACHE_DIR") or platformdirs.user_cache_dir(
        "layerlab"
    )


def _download_wheels(directory: Path, zip_arch: str) -> list[Path]:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--disable-pip-version-check", "--only-binary=:all:",
        f"--platform=manylinux2014_{zip_arch}", f"--python-version={PYTHON_VERSION}",
        "--implementation=cp", f"--dest={directory}", *WHEELS,
    ]  # fmt: skip
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-20:])
        raise LayerlabError(
            "pip download of the wheels for the AWS CLI stand-in failed with "
            f"exit code {result.returncode}:\n{tail}"
        )
    return sorted(directory.glob("*.whl"))


def _write_zip(path: Path, wheels: list[Path]) -> None:
    listed = "\n".join(f"- {wheel.name}" for wheel in wheels)
    texts = {
        "aws/install": (INSTALL_SCRIPT, 0o755),
        "aws/README.md": (README.replace("@WHEELS@", listed), 0o644),
        "aws/dist/aws": (AWS_SCRIPT, 0o755),
        "aws/dist/aws_completer": (COMPLETER_SCRIPT, 0o755),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, (text, mode) in texts.items():
            data = text.replace("@VERSION@", STAND_IN_VERSION).encode()
            archive.writestr(_zip_info(name, _FIXED_TIME, mode), data)
        for wheel in wheels:
            _copy_wheel(archive, wheel)


def _copy_wheel(archive: zipfile.ZipFile, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as source:
        for entry in source.infolist():
            if entry.is_dir():
                continue
            mode = (entry.external_attr >> 16) & 0o777 or 0o644
            info = _zip_info(f"aws/dist/{entry.filename}", entry.date_time, mode)
            with source.open(entry) as data, archive.open(info, "w") as target:
                shutil.copyfileobj(data, target, 1 << 20)


def _zip_info(name: str, date_time: tuple[int, ...], mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=date_time)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    # The high 16 bits hold the Unix mode, which unzip restores.
    info.external_attr = (0o100000 | mode) << 16
    info.create_system = 3
    return info


def _unpacked_bytes(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(entry.file_size for entry in archive.infolist())


# The HTTP server


def _stable_port(architecture: str) -> int:
    digest = hashlib.sha256(f"layerlab-awscli\0{architecture}".encode()).digest()
    return 20000 + int.from_bytes(digest[:4], "big") % 20000


@contextlib.contextmanager
def _serve(zip_path: Path, architecture: str) -> Iterator[str]:
    served_path = "/" + zip_path.name
    port = _stable_port(_zip_architecture(architecture))
    server = _start_server(zip_path, served_path, port)
    if server is None and _serves(port, served_path, zip_path):
        yield _url(port, served_path)
        return
    if server is None:
        server = _start_server(zip_path, served_path, 0)
        assert server is not None
        logger.warning(
            "port %d is in use, so the AWS CLI stand-in is served on port %d; "
            "the download step then misses the build cache",
            port,
            server.server_address[1],
        )

    url = _url(server.server_address[1], served_path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    logger.info("serving %s on %s", zip_path, url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _url(port: int, served_path: str) -> str:
    return f"http://127.0.0.1:{port}{served_path}"


def _start_server(
    zip_path: Path, served_path: str, port: int
) -> http.server.ThreadingHTTPServer | None:
    size = zip_path.stat().st_size

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._send_headers()

        def do_GET(self) -> None:
            if not self._send_headers():
                return
            with open(zip_path, "rb") as file:
                try:
                    shutil.copyfileobj(file, self.wfile, 1 << 20)
                except (BrokenPipeError, ConnectionResetError):
                    logger.info("a client closed the AWS CLI download early")

        def _send_headers(self) -> bool:
            if self.path != served_path:
                self.send_error(404)
                return False
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            return True

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("AWS CLI stand-in server: " + format, *args)

    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError:
        if port == 0:
            raise
        return None


def _serves(port: int, served_path: str, zip_path: Path) -> bool:
    """Return whether another process serves a zip of the same size on ``port``."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(_url(port, served_path), method="HEAD")
    try:
        with opener.open(request, timeout=2) as response:
            length = response.headers.get("Content-Length")
    except OSError:
        return False
    return length == str(zip_path.stat().st_size)
