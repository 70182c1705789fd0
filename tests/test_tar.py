"""The streaming tar parser against archives written by Python's tarfile."""

from __future__ import annotations

import io
import itertools
import tarfile

import pytest

from layerlab._tar import (
    TarFormatError,
    TarReader,
    decode_name,
    encode_name,
    name_for_tarfile,
    name_from_tarfile,
)


def _archive(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    buffer = io.BytesIO()
    # A name given in surrogateescape form is written as its bytes.
    with tarfile.open(
        fileobj=buffer,
        mode="w",
        format=fmt,
        encoding="utf-8",
        errors="surrogateescape",
    ) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **fields
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _read_all(data: bytes) -> list[tuple[str, int, int, bytes, str]]:
    reader = TarReader(io.BytesIO(data))
    found = []
    for entry in reader:
        content = b""
        while chunk := reader.read_data(7):
            content += chunk
        found.append((entry.name, entry.typeflag, entry.size, content, entry.linkname))
    return found


@pytest.mark.parametrize(
    "fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
)
def test_reader_formats_match_tarfile(fmt: int) -> None:
    long_dir = "d" * 120
    members = [
        (_info("a.txt", size=5), b"hello"),
        (_info(f"{long_dir}/b.txt", size=3), b"abc"),
        (_info("dir", tarfile.DIRTYPE), b""),
        (_info("link", tarfile.SYMTYPE, linkname="a.txt"), b""),
        (_info("hard", tarfile.LNKTYPE, linkname="a.txt"), b""),
        (_info("empty"), b""),
    ]
    found = _read_all(_archive(members, fmt))
    names = [item[0] for item in found]
    # tarfile writes a directory name with a trailing slash.
    assert names == ["a.txt", f"{long_dir}/b.txt", "dir/", "link", "hard", "empty"]
    assert found[0][3] == b"hello"
    assert found[1][3] == b"abc"
    assert found[3][4] == "a.txt"
    assert found[4][1] == ord("1")


def test_reader_pax_overrides_and_unicode() -> None:
    name = "ünïcode/" + "x" * 150 + ".txt"
    info = _info(name, size=4, uid=70000000, gid=5, mtime=1_700_000_000)
    found = list(TarReader(io.BytesIO(_archive([(info, b"data")], tarfile.PAX_FORMAT))))
    assert found[0].name == name
    assert found[0].uid == 70000000
    assert found[0].mtime == 1_700_000_000


def test_reader_gnu_base256_uid() -> None:
    info = _info("big-uid", size=1, uid=2**40)
    found = list(TarReader(io.BytesIO(_archive([(info, b"z")], tarfile.GNU_FORMAT))))
    assert found[0].uid == 2**40


def test_reader_hardlink_size_carries_no_data() -> None:
    # Go's archive/tar, which the Docker Engine uses, writes no data after a
    # hardlink header even when its size field is set.
    first = _archive([(_info("f", size=4), b"abcd")], tarfile.USTAR_FORMAT)[:1024]
    link = _info("l", tarfile.LNKTYPE, linkname="f")
    block = bytearray(link.tobuf(tarfile.USTAR_FORMAT))
    block[124:136] = b"%011o\0" % 4
    checksum = sum(block[:148]) + 256 + sum(block[156:512])
    block[148:156] = b"%06o\0 " % checksum
    after = _archive([(_info("g", size=2), b"xy")], tarfile.USTAR_FORMAT)
    data = first + bytes(block) + after
    found = _read_all(data)
    assert [item[0] for item in found] == ["f", "l", "g"]
    assert found[1][2] == 4
    assert found[2][3] == b"xy"


def test_reader_truncated_data_raises() -> None:
    data = _archive([(_info("f", size=2000), b"a" * 2000)], tarfile.USTAR_FORMAT)
    with pytest.raises(TarFormatError, match="unexpected end of data"):
        _read_all(data[:1500])


def test_reader_bad_checksum_raises() -> None:
    data = bytearray(_archive([(_info("f", size=1), b"a")], tarfile.USTAR_FORMAT))
    data[0] ^= 0x20
    with pytest.raises(TarFormatError, match="checksum"):
        _read_all(bytes(data))


def test_reader_missing_end_marker_ends_cleanly() -> None:
    data = _archive([(_info("f", size=1), b"a")], tarfile.USTAR_FORMAT)
    assert [item[0] for item in _read_all(data[:1024])] == ["f"]


# Names that are not valid UTF-8


def _surrogates(raw: bytes) -> str:
    """Spell ``raw`` as tarfile reads it with errors="surrogateescape"."""
    return raw.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"etc/passwd", "etc/passwd"),
        (b"caf\\xe9.txt", "caf\\xe9.txt"),
        ("café/日本".encode(), "café/日本"),
        (b"caf\xe9.txt", "caf\ufffdxe9.txt"),
        (b"a/\xff\xfe/b", "a/\ufffdxff\ufffdxfe/b"),
        ("r\ufffd".encode(), "r\ufffd\ufffd"),
        ("\ufffd".encode() + b"\xff", "\ufffd\ufffd\ufffdxff"),
        (b"cut\xe2\x82", "cut\ufffdxe2\ufffdx82"),
        (b"\xed\xa0\x80", "\ufffdxed\ufffdxa0\ufffdx80"),
        (b"\xc0\xaf", "\ufffdxc0\ufffdxaf"),
    ],
)
def test_decode_name_spelling(raw: bytes, text: str) -> None:
    assert decode_name(raw) == text
    assert encode_name(text) == raw


def test_decode_name_injective_and_reversible() -> None:
    # Every sequence of up to four of these pieces: invalid bytes, the
    # pieces of an escape, U+FFFD itself and a separator.
    pieces = [b"x", b"e9", b"\\", b"/", b"\xe9", b"\xc3", b"\xa9", "\ufffd".encode()]
    decoded: dict[str, bytes] = {}
    for count in range(5):
        for parts in itertools.product(pieces, repeat=count):
            raw = b"".join(parts)
            text = decode_name(raw)
            text.encode("utf-8")  # no lone surrogates, so Arrow can store it
            assert encode_name(text) == raw
            assert decoded.setdefault(text, raw) == raw
            components = [decode_name(part) for part in raw.split(b"/")]
            assert text.split("/") == components


@pytest.mark.parametrize("text", ["\ufffd", "a\ufffdx4", "\ufffdx41", "\ufffdxE9"])
def test_encode_name_rejects_stray_mark(text: str) -> None:
    with pytest.raises(ValueError, match="starts no escape"):
        encode_name(text)


def test_tarfile_spelling_round_trip() -> None:
    raw = b"d\xff/caf\xe9.txt"
    assert name_from_tarfile(_surrogates(raw)) == "d\ufffdxff/caf\ufffdxe9.txt"
    assert name_for_tarfile("d\ufffdxff/caf\ufffdxe9.txt") == _surrogates(raw)


@pytest.mark.parametrize(
    "fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
)
def test_reader_escapes_non_utf8_names(fmt: int) -> None:
    long_dir = "d\udce9" * 40  # 80 bytes, so ustar splits it into the prefix
    members = [
        (_info(_surrogates(b"caf\xe9.txt"), size=2), b"ok"),
        (_info(f"{long_dir}/f\udcff", size=1), b"z"),
        (_info("link", tarfile.SYMTYPE, linkname=_surrogates(b"to\xfe")), b""),
        (_info("caf\\xe9.txt"), b""),
    ]
    if fmt != tarfile.USTAR_FORMAT:
        members.append((_info(_surrogates(b"long\xe9" + b"n" * 120)), b""))
    found = _read_all(_archive(members, fmt))
    names = [item[0] for item in found]
    assert names[0] == "caf\ufffdxe9.txt"
    assert names[1] == "d\ufffdxe9" * 40 + "/f\ufffdxff"
    assert found[2][4] == "to\ufffdxfe"
    assert names[3] == "caf\\xe9.txt"
    if fmt != tarfile.USTAR_FORMAT:
        assert names[4] == "long\ufffdxe9" + "n" * 120


def test_reader_raw_pax_path_without_hdrcharset() -> None:
    # CPython's tarfile notes that GNU tar 1.23 and older write a name it
    # cannot convert as raw bytes in the pax path record, without
    # hdrcharset=BINARY.
    raw = b"caf\xe9.txt"
    record = b"path=" + raw + b"\n"
    length = len(record) + 3
    record = b"%d " % length + record
    assert len(record) == length
    pax = _info("././@PaxHeader", tarfile.XHDTYPE, size=len(record))
    data = _archive(
        [(pax, record), (_info("placeholder", size=1), b"x")], tarfile.USTAR_FORMAT
    )
    found = _read_all(data)
    assert [item[0] for item in found] == ["caf\ufffdxe9.txt"]
    with tarfile.open(
        fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape"
    ) as archive:
        assert [name_from_tarfile(name) for name in archive.getnames()] == [
            "caf\ufffdxe9.txt"
        ]
