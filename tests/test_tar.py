"""The streaming tar parser against archives written by Python's tarfile."""

from __future__ import annotations

import io
import tarfile

import pytest

from layerlab._tar import TarFormatError, TarReader


def _archive(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
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
