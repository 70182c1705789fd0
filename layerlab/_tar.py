"""A streaming tar header parser for layer blobs.

Python's ``tarfile`` in stream mode copies its whole read buffer for every
512-byte header, which made it the slowest part of reading a layer. This
parser reads headers straight from a buffered stream and hands each entry's
data to the caller, which hashes or skips it.

It understands the formats that image builders write: ustar (with its name
prefix), POSIX pax extended headers (path, linkpath, size, uid, gid, mtime)
and the GNU long name and long link records. As in Go's archive/tar, which
the Docker Engine and most builders use, link, directory, device and FIFO
entries carry no data, whatever their size field contains.

Names and link names are bytes in a tar, and tables need valid UTF-8 text
(Arrow stores nothing else). :func:`decode_name` turns them into text
without losing or merging any name, and :func:`encode_name` gives the bytes
back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_HEADER_ONLY = frozenset(b"12345")  # hardlink, symlink, char, block, dir
_FIFO = ord("6")
_PAX_LOCAL = ord("x")
_PAX_GLOBAL = ord("g")
_GNU_LONGNAME = ord("L")
_GNU_LONGLINK = ord("K")


class TarFormatError(Exception):
    """The stream is not a valid tar archive, or ends in the middle of one."""


@dataclass
class TarEntry:
    """One tar member's header, with the fields that layerlab uses."""

    name: str
    typeflag: int
    size: int
    mode: int
    uid: int
    gid: int
    mtime: int
    linkname: str

    @property
    def has_data(self) -> bool:
        """Whether data blocks follow this header in the stream."""
        return self.typeflag not in _HEADER_ONLY and self.typeflag != _FIFO


def _number(field: bytes) -> int:
    # Large values use the GNU base-256 form: the high bit of the first byte
    # is set and the rest is a big-endian two's complement number.
    if field and field[0] & 0x80:
        value = int.from_bytes(field, "big", signed=False)
        value &= (1 << (8 * len(field) - 1)) - 1
        if field[0] & 0x40:
            value -= 1 << (8 * len(field) - 1)
        return value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarFormatError(f"invalid number field {field!r}") from None


ESCAPE_MARK = "\ufffd"
"""U+FFFD REPLACEMENT CHARACTER, which starts every escape in a decoded name."""

_MARK_BYTES = ESCAPE_MARK.encode()
# surrogateescape decodes an undecodable byte 0xNN to U+DCNN, NN >= 0x80.
_SURROGATE = re.compile("[\udc80-\udcff]")
_ESCAPE = re.compile(ESCAPE_MARK + "(?:(" + ESCAPE_MARK + ")|x([89a-f][0-9a-f]))")


def decode_name(raw: bytes) -> str:
    """Decode a tar name or link name to valid UTF-8 text, reversibly.

    Valid UTF-8 decodes as usual, except that each U+FFFD in it is doubled.
    Each byte that is not part of valid UTF-8 becomes U+FFFD, ``x`` and the
    byte's two lowercase hex digits: b"caf\\xe9" decodes to "caf\ufffdxe9".
    So a U+FFFD in the result always starts an escape, no two byte strings
    decode to the same text, and a valid UTF-8 name without U+FFFD (nearly
    every name) stays as it is, backslashes included. A ``/`` byte is always
    valid and no escape contains one, so each component of a decoded path is
    the decoding of that component's bytes.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        escaped = raw.decode("utf-8", "surrogateescape")
        escaped = escaped.replace(ESCAPE_MARK, ESCAPE_MARK * 2)
        return _SURROGATE.sub(_byte_escape, escaped)
    if ESCAPE_MARK in text:
        return text.replace(ESCAPE_MARK, ESCAPE_MARK * 2)
    return text


def _byte_escape(match: re.Match[str]) -> str:
    return f"{ESCAPE_MARK}x{ord(match.group()) - 0xDC00:02x}"


def encode_name(name: str) -> bytes:
    """Return the bytes that :func:`decode_name` decoded to ``name``.

    Raises ValueError when ``name`` contains a U+FFFD that starts no escape,
    which decode_name never writes.
    """
    if ESCAPE_MARK not in name:
        return name.encode("utf-8")
    encoded = bytearray()
    position = 0
    for match in _ESCAPE.finditer(name):
        encoded += _literal(name, position, match.start())
        if match.group(1):
            encoded += _MARK_BYTES
        else:
            encoded.append(int(match.group(2), 16))
        position = match.end()
    encoded += _literal(name, position, len(name))
    return bytes(encoded)


def _literal(name: str, start: int, end: int) -> bytes:
    text = name[start:end]
    if ESCAPE_MARK in text:
        raise ValueError(
            f"invalid escaped name {name!r}: U+FFFD at offset "
            f"{start + text.index(ESCAPE_MARK)} starts no escape"
        )
    return text.encode("utf-8")


def name_from_tarfile(name: str) -> str:
    """Decode a name as Python's tarfile gives it into the tables' spelling.

    tarfile must be opened with ``encoding="utf-8"`` and
    ``errors="surrogateescape"``, so that ``name`` keeps every byte.
    """
    return decode_name(name.encode("utf-8", "surrogateescape"))


def name_for_tarfile(name: str) -> str:
    """Encode a table's name for tarfile, which then writes the original bytes.

    tarfile must be opened as :func:`name_from_tarfile` requires.
    """
    return encode_name(name).decode("utf-8", "surrogateescape")


def _field(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156])
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored == unsigned:
        return True
    signed = (
        unsigned
        - sum(b for b in block[:148] if b > 127) * 2
        - sum(b for b in block[156:] if b > 127) * 2
    )
    return stored == signed


def _read_exact(stream: Any, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise TarFormatError(
            f"unexpected end of data: wanted {size} bytes, got {len(data)}"
        )
    return data


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        if space < 0:
            break
        try:
            length = int(data[position:space])
        except ValueError:
            raise TarFormatError("invalid pax extended header record") from None
        if length <= 0:
            raise TarFormatError("invalid pax extended header record length")
        record = data[space + 1 : position + length - 1]
        key, _, value = record.partition(b"=")
        # The path and linkpath values are raw bytes, with or without a
        # hdrcharset=BINARY record; the other values used here are numbers.
        records[key.decode("utf-8", "replace")] = decode_name(value)
        position += length
    return records


def _padding(size: int) -> int:
    return -size % BLOCK


class TarReader:
    """Iterate the entries of a tar stream; the caller reads each entry's data.

    After an entry is yielded, the caller may call :meth:`read_data` to read
    its data in chunks; whatever it leaves unread is skipped before the next
    header.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._left = 0
        self._pad = 0

    def read_data(self, size: int) -> bytes:
        """Read up to ``size`` bytes of the current entry's data."""
        size = min(size, self._left)
        if size <= 0:
            return b""
        data = self._stream.read(size)
        if not data:
            raise TarFormatError("unexpected end of data inside an entry")
        self._left -= len(data)
        return data

    def _skip_rest(self) -> None:
        remaining = self._left + self._pad
        while remaining > 0:
            data = self._stream.read(min(remaining, 1 << 20))
            if not data:
                raise TarFormatError("unexpected end of data inside an entry")
            remaining -= len(data)
        self._left = self._pad = 0

    def __iter__(self) -> Iterator[TarEntry]:
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            self._skip_rest()
            block = self._stream.read(BLOCK)
            if not block or block == _ZERO_BLOCK:
                return  # end-of-archive marker, or a stream without one
            if len(block) < BLOCK:
                raise TarFormatError("unexpected end of data in a header")
            if not _checksum_ok(block):
                raise TarFormatError("invalid header checksum")
            entry = self._entry(block)

            if entry.typeflag in (_PAX_LOCAL, _PAX_GLOBAL):
                data = _read_exact(self._stream, entry.size)
                _read_exact(self._stream, _padding(entry.size))
                if entry.typeflag == _PAX_LOCAL:
                    pax = _parse_pax(data)
                continue
            if entry.typeflag in (_GNU_LONGNAME, _GNU_LONGLINK):
                data = _read_exact(self._stream, entry.size)
                _read_exact(self._stream, _padding(entry.size))
                value = decode_name(_field(data))
                if entry.typeflag == _GNU_LONGNAME:
                    long_name = value
                else:
                    long_link = value
                continue

            if long_name is not None:
                entry.name = long_name
            if long_link is not None:
                entry.linkname = long_link
            _apply_pax(entry, pax)
            pax, long_name, long_link = {}, None, None

            if entry.size < 0:
                raise TarFormatError(f"negative size in header of {entry.name!r}")
            data_size = entry.size if entry.has_data else 0
            self._left = data_size
            self._pad = _padding(data_size)
            yield entry

    @staticmethod
    def _entry(block: bytes) -> TarEntry:
        name = _field(block[0:100])
        if block[257:262] == b"ustar":
            prefix = _field(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        typeflag = block[156] or ord("0")
        return TarEntry(
            name=decode_name(name),
            typeflag=typeflag,
            size=_number(block[124:136]),
            mode=_number(block[100:108]),
            uid=_number(block[108:116]),
            gid=_number(block[116:124]),
            mtime=_number(block[136:148]),
            linkname=decode_name(_field(block[157:257])),
        )


def _apply_pax(entry: TarEntry, pax: dict[str, str]) -> None:
    if not pax:
        return
    if "path" in pax:
        entry.name = pax["path"]
    if "linkpath" in pax:
        entry.linkname = pax["linkpath"]
    try:
        if "size" in pax:
            entry.size = int(pax["size"])
        if "uid" in pax:
            entry.uid = int(pax["uid"])
        if "gid" in pax:
            entry.gid = int(pax["gid"])
        if "mtime" in pax:
            entry.mtime = int(float(pax["mtime"]))
    except ValueError:
        raise TarFormatError(f"invalid pax record for {entry.name!r}") from None
