"""The host's extra certificate authorities, for builds behind a TLS-inspecting proxy.

Corporate networks, and some sandboxes, re-sign outgoing HTTPS with a
certificate authority (CA) of their own. The host trusts it, but a container
image does not, so ``npm install``, ``pip install`` or ``curl https://...`` in
a ``RUN`` step fails with "self-signed certificate in certificate chain".

Which CAs count as extra: the PEM file or directory named by
``LAYERLAB_EXTRA_CA_CERTS`` when that variable is set (an empty value means
none), otherwise the certificates in the directories where administrators put
local trust anchors on the common distributions (``LOCAL_ANCHOR_DIRS``).
The bundles named by ``SSL_CERT_FILE`` and similar variables are not read,
because they usually hold the whole public root set as well.

layerlab hands these CAs to builds in two ways:

- Stand-in base images (see ``_bases``) contain them as files under
  ``/usr/local/share/ca-certificates`` and ``/usr/local/share/layerlab``, and
  list their fingerprints in the ``org.layerlab.extra-ca`` label.
- :func:`serve_extra_cas` serves them over HTTP on 127.0.0.1 for the length
  of one build, so that a Dockerfile that declares
  ``ARG LAYERLAB_EXTRA_CA_URL`` can fetch them inside the ``RUN`` step that
  needs them and delete them in that same step (see ``_build``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import logging
import os
import re
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger("layerlab")

ENV_VARIABLE = "LAYERLAB_EXTRA_CA_CERTS"

# Debian, Ubuntu and Alpine; Fedora and RHEL; Arch; openSUSE.
LOCAL_ANCHOR_DIRS = (
    "/usr/local/share/ca-certificates",
    "/etc/pki/ca-trust/source/anchors",
    "/etc/ca-certificates/trust-source/anchors",
    "/etc/pki/trust/anchors",
)

# Paths of the extra CAs in stand-in images. update-ca-certificates (Debian's
# ca-certificates package) adds every *.crt file of the anchor directory to
# the system bundle. Node.js ignores that bundle and reads only the one file
# named by NODE_EXTRA_CA_CERTS.
IMAGE_ANCHOR_DIR = "/usr/local/share/ca-certificates"
IMAGE_BUNDLE_PATH = "/usr/local/share/layerlab/extra-ca.pem"

SERVED_PATH = "/extra-ca.pem"

_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL
)


@dataclass(frozen=True)
class Certificate:
    """One CA certificate: its PEM text, SHA-256 fingerprint and source file."""

    pem: str
    fingerprint: str
    source: str

    @property
    def file_name(self) -> str:
        """File name for the image's anchor directory."""
        return f"layerlab-extra-{self.fingerprint[:16]}.crt"


def host_extra_cas() -> tuple[Certificate, ...]:
    """Find the host's extra CAs, deduplicated and sorted by fingerprint."""
    override = os.environ.get(ENV_VARIABLE)
    if override is not None:
        paths = [override] if override else []
    else:
        paths = [path for path in LOCAL_ANCHOR_DIRS if os.path.isdir(path)]

    found: dict[str, Certificate] = {}
    for file_path in _pem_files(paths):
        for certificate in _read_certificates(file_path):
            found.setdefault(certificate.fingerprint, certificate)
    return tuple(found[key] for key in sorted(found))


def _pem_files(paths: list[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        for directory, _, names in sorted(os.walk(path, followlinks=True)):
            for name in sorted(names):
                if name.endswith((".crt", ".pem")):
                    yield os.path.join(directory, name)


def _read_certificates(path: str) -> list[Certificate]:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError as error:
        logger.warning("skipped the unreadable CA file %s: %s", path, error)
        return []

    certificates = []
    for match in _PEM_BLOCK.finditer(text):
        pem = match.group() + "\n"
        try:
            der = ssl.PEM_cert_to_DER_cert(pem)
        except ValueError:
            logger.warning("skipped an invalid PEM block in CA file %s", path)
            continue
        fingerprint = hashlib.sha256(der).hexdigest()
        certificates.append(Certificate(pem, fingerprint, path))
    return certificates


def bundle_text(certificates: tuple[Certificate, ...]) -> str:
    """Concatenate the certificates into one PEM bundle (empty for none)."""
    return "".join(certificate.pem for certificate in certificates)


def label_value(certificates: tuple[Certificate, ...]) -> str:
    """Return the ``org.layerlab.extra-ca`` label: fingerprints, or ``none``."""
    if not certificates:
        return "none"
    return ",".join(f"sha256:{c.fingerprint}" for c in certificates)


@contextlib.contextmanager
def serve_extra_cas(certificates: tuple[Certificate, ...]) -> Iterator[str]:
    """Serve the certificates as one PEM file on 127.0.0.1 and yield its URL.

    The legacy builder of Docker Engine 20.10 has no build secrets and no
    ``RUN --mount``. The value of every build argument available to a ``RUN``
    step is part of that step's cache key and of its ``created_by`` history.
    So the CAs themselves are not passed as a build argument: only this URL
    is. The port is derived from the bundle, so the URL, and with it the
    build cache, stays the same from one build to the next. When another
    process already serves the same bundle on that port, its URL is reused.
    A build reaches 127.0.0.1 of the host only with host networking. With no
    extra CAs the served file is empty.
    """
    body = bundle_text(certificates).encode("ascii")
    port = _stable_port(body)
    server = _start_server(body, port)
    if server is None and _serves(port, body):
        yield _url(port)
        return
    if server is None:
        server = _start_server(body, 0)
        assert server is not None
        logger.warning(
            "port %d is in use, so the extra CAs are served on port %d. "
            "RUN steps after ARG LAYERLAB_EXTRA_CA_URL then miss the build cache",
            port,
            server.server_address[1],
        )

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _url(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _stable_port(body: bytes) -> int:
    digest = hashlib.sha256(b"layerlab-extra-ca\0" + body).digest()
    return 20000 + int.from_bytes(digest[:4], "big") % 20000


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}{SERVED_PATH}"


def _start_server(body: bytes, port: int) -> http.server.ThreadingHTTPServer | None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != SERVED_PATH:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-pem-file")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("extra CA server: " + format, *args)

    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError:
        if port == 0:
            raise
        return None


def _serves(port: int, body: bytes) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(_url(port), timeout=2) as response:
            return response.read() == body
    except OSError:
        return False
