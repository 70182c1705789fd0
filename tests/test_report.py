"""The HTML report, the bundled samples and the report and samples commands.

Expected sizes of the samples come from their Dockerfiles: the build step
writes a 1 MiB file (``dd ... count=1024``), 40 files of ``seq 1 N`` with
N = 100, 200, ..., 4000, and a 65,536-byte result (48 KiB + 16 KiB).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from handmade import (
    Layer,
    directory,
    file,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)
from report_images import (
    HOSTILE_COMMAND,
    HOSTILE_NAMES,
    NAME_WITH_SLASHES,
    hostile_layers,
    large_layers,
)

import layerlab
from layerlab._format import human_bytes
from layerlab._reading import plain_reading
from layerlab._report import render_report, report
from layerlab._samples import list_samples, sample_path
from layerlab.cli import main

TOOLCHAIN_BYTES = 1024 * 1024
SOURCE_BYTES = sum(
    len(str(number)) + 1 for i in range(1, 41) for number in range(1, i * 100 + 1)
)
RESULT_BYTES = 49152 + 16384
SAMPLE_NAMES = ["rm-later", "combined-run", "multistage", "squashed"]
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


class PageParser(HTMLParser):
    """Collect the tags, attributes, text and data blocks of a page.

    A data block is a ``<script>`` with ``data-encoding``: JSON, or gzip and
    base64 over JSON. ``figures`` lists the decoded figures in page order, and
    ``rows`` maps each table filled from a block to its decoded rows.
    ``tables`` counts each table's ``<tr>`` in the markup plus its block's rows.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw_blocks: list[str] = []
        self.figures: list[Any] = []
        self.rows: dict[str, list[list[Any]]] = {}
        self.tables: dict[str, int] = {}
        self._table: str | None = None
        self.text: list[str] = []
        self._in_script = False
        self._block: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._in_script = tag in ("script", "style")
        if tag == "script" and attributes.get("data-encoding"):
            self._block = attributes
            self.raw_blocks.append("")
        if tag == "table" and attributes.get("id"):
            self._table = attributes["id"]
            self.tables[self._table] = 0
        if tag == "tr" and self._table is not None:
            self.tables[self._table] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._block is not None:
            self._decode(self._block, self.raw_blocks[-1])
            self._block = None
        if tag in ("script", "style"):
            self._in_script = False
        if tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self.raw_blocks[-1] += data
        elif not self._in_script:
            self.text.append(data)

    def _decode(self, attributes: dict[str, str | None], raw: str) -> None:
        encoding = attributes["data-encoding"]
        if encoding == "gzip-base64":
            text = gzip.decompress(base64.b64decode(raw)).decode("utf-8")
        else:
            assert encoding == "json"
            assert attributes.get("type") == "application/json"
            text = raw
        if attributes.get("id") == "layerlab-plotly":
            return
        value = json.loads(text)
        if attributes.get("data-figure"):
            self.figures.append(value)
        table = attributes.get("data-rows")
        if table:
            self.rows[table] = value
            self.tables[table] += len(value)

    def cell_texts(self) -> list[str]:
        """Return the text of every cell of the tables filled from blocks."""
        return [
            cell[0] if isinstance(cell, list) else cell
            for rows in self.rows.values()
            for row in rows
            for cell in row
        ]

    def attribute_values(self, name: str) -> list[str]:
        return [value for _, attributes in self.tags if (value := attributes.get(name))]


def parse(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def rm_later() -> layerlab.Image:
    with layerlab.open_image(str(sample_path("rm-later")), cache=False) as image:
        yield image


@pytest.fixture(scope="module")
def sample_page(rm_later: layerlab.Image) -> str:
    return render_report(rm_later, inline_plotlyjs=False)


@pytest.fixture(scope="module", params=[True, False], ids=["compressed", "plain"])
def hostile_page(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    path = tmp_path_factory.mktemp("hostile") / "hostile.tar"
    write_oci_archive(path, hostile_layers())
    return render_report(
        f"oci-archive:{path}", inline_plotlyjs=False, compress=request.param
    )


def test_samples_listed_in_order() -> None:
    samples = list_samples()
    assert [sample.name for sample in samples] == SAMPLE_NAMES
    for sample in samples:
        assert sample.path.is_file()
        assert sample.dockerfile.is_file()
        assert sample.title
        assert sample.description


def test_sample_path_unknown_name() -> None:
    with pytest.raises(layerlab.ReferenceNotFoundError, match="rm-later"):
        sample_path("no-such-sample")


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_sizes_match_dockerfiles(name: str) -> None:
    with layerlab.open_image(str(sample_path(name)), cache=False) as image:
        filesystem = image.filesystem.set_index("path")
        assert filesystem.loc["opt/app/app.dat", "size"] == RESULT_BYTES
        assert not filesystem.index.str.startswith("tmp/build").any()
        expected_waste = TOOLCHAIN_BYTES + SOURCE_BYTES if name == "rm-later" else 0
        assert image.metrics.reclaimable_bytes == expected_waste


def test_samples_total_a_few_megabytes() -> None:
    total = sum(sample.path.stat().st_size for sample in list_samples())
    assert total < 8_000_000


def test_reading_states_reclaimable_bytes(sample_page: str) -> None:
    reading = re.search(r'<p class="reading">(.*?)</p>', sample_page, re.DOTALL)
    assert reading is not None
    text = html.unescape(reading.group(1))
    assert human_bytes(TOOLCHAIN_BYTES + SOURCE_BYTES) in text
    assert "/tmp/build/toolchain.bin" in text
    assert "dive rates the image 100.0% efficient" in text


def test_report_sections(sample_page: str, rm_later: layerlab.Image) -> None:
    page = parse(sample_page)
    ids = {attributes.get("id") for _, attributes in page.tags}
    for section in ("summary", "waterfall", "treemap", "layers", "waste", "files"):
        assert f"image-1-{section}" in ids
    assert page.tables["image-1-layer-table"] == 1 + len(rm_later.layers)
    assert page.tables["image-1-waste-table"] == 1 + len(rm_later.waste)
    for layer in rm_later.layers["layer"]:
        assert f"image-1-files-{layer}" in page.tables or layer in (1, 3)


def test_report_figures_are_json(sample_page: str) -> None:
    page = parse(sample_page)
    assert len(page.figures) == 4
    types = [figure["data"][0]["type"] for figure in page.figures]
    assert types == ["bar", "treemap", "bar", "bar"]


def test_plain_blocks_cannot_close_their_element(rm_later: layerlab.Image) -> None:
    page = parse(render_report(rm_later, inline_plotlyjs=False, compress=False))
    assert len(page.figures) == 4
    # Every table but the layer table is filled from a block.
    assert set(page.rows) == set(page.tables) - {"image-1-layer-table"}
    assert "image-1-waste-table" in page.rows
    for text in page.raw_blocks:
        assert "<" not in text


def test_compressed_and_plain_pages_carry_the_same_data(
    rm_later: layerlab.Image,
) -> None:
    packed = parse(render_report(rm_later, inline_plotlyjs=False))
    plain = parse(render_report(rm_later, inline_plotlyjs=False, compress=False))
    assert packed.rows == plain.rows
    assert packed.figures == plain.figures
    assert all(set(raw) <= set(BASE64) for raw in packed.raw_blocks)


def test_report_cdn_is_small(sample_page: str) -> None:
    assert "cdn.plot.ly/plotly-" in sample_page
    assert len(sample_page.encode()) < 300_000


def test_report_embeds_plotly_compressed(
    tmp_path: Path, rm_later: layerlab.Image
) -> None:
    import plotly.offline

    path = report(rm_later, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert "<script src=" not in text
    block = re.search(
        r'<script type="application/octet-stream" data-encoding="gzip-base64" '
        r'id="layerlab-plotly">([^<]*)</script>',
        text,
    )
    assert block is not None
    inflated = gzip.decompress(base64.b64decode(block.group(1))).decode("utf-8")
    assert inflated == plotly.offline.get_plotlyjs()
    # plotly.js alone is 4.8 MB; compressed, the whole page is well under half.
    assert path.stat().st_size < len(inflated) / 2


def test_report_inlines_plain_plotly(tmp_path: Path, rm_later: layerlab.Image) -> None:
    import plotly.offline

    path = report(rm_later, tmp_path / "report.html", compress=False)
    text = path.read_text(encoding="utf-8")
    assert "<script src=" not in text
    assert 'id="layerlab-plotly"' not in text
    assert not re.search(r'<script[^>]*data-encoding="gzip-base64"', text)
    assert plotly.offline.get_plotlyjs()[:2000] in text


def test_report_caps_rows_per_layer(rm_later: layerlab.Image) -> None:
    page_text = render_report(rm_later, inline_plotlyjs=False, max_rows_per_layer=3)
    page = parse(page_text)
    assert page.tables["image-1-files-0"] == 1 + 3
    assert "Showing the 3 largest of 279 entries of this layer" in page_text


def test_report_several_images(rm_later: layerlab.Image) -> None:
    text = render_report(
        [rm_later, str(sample_path("combined-run"))], inline_plotlyjs=False
    )
    assert 'id="image-1"' in text
    assert 'id="image-2"' in text
    assert "layerlab report: 2 images" in text
    assert 'href="#image-2"' in text


def test_report_many_images_skip_comparison(rm_later: layerlab.Image) -> None:
    text = render_report([rm_later] * 11, inline_plotlyjs=False, compress=False)
    assert 'id="image-11"' in text
    assert "<h2>Comparison</h2>" not in text
    assert "The comparison is left out" in text
    assert "this report has 11" in text


def test_report_comparison_hook(rm_later: layerlab.Image) -> None:
    marker = '<div class="made-by-compare">side by side</div>'
    text = render_report(rm_later, inline_plotlyjs=False, comparison_html=marker)
    assert marker in text
    assert text.index(marker) < text.index('id="image-1"')


def test_report_rejects_no_images() -> None:
    with pytest.raises(layerlab.OptionError):
        render_report([])


def test_hostile_names_are_text(hostile_page: str) -> None:
    page = parse(hostile_page)
    text = "".join(page.text) + "\n".join(page.cell_texts())
    for name in HOSTILE_NAMES:
        assert f"/data/{name}" in text
        assert f"/waste/{name}" in text
    assert f"/data/{NAME_WITH_SLASHES}" in text
    for raw in ("<img src=x", "<svg onload", "<a href=javascript", "<b>bold"):
        assert raw not in hostile_page
    assert "</script><script>alert(4)" not in hostile_page
    assert "alert(5)</script>" not in hostile_page


def test_hostile_page_has_only_own_tags(hostile_page: str) -> None:
    page = parse(hostile_page)
    tags = {tag for tag, _ in page.tags}
    allowed = {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "script",
        "body",
        "header",
        "h1",
        "h2",
        "h3",
        "p",
        "main",
        "section",
        "span",
        "div",
        "table",
        "caption",
        "tbody",
        "thead",
        "tr",
        "th",
        "td",
        "button",
        "code",
        "label",
        "input",
        "details",
        "summary",
        "footer",
        "noscript",
    }
    assert tags <= allowed
    for _, attributes in page.tags:
        assert not [name for name in attributes if name.startswith("on")]


def test_hostile_command_in_layer_table(hostile_page: str) -> None:
    page = parse(hostile_page)
    assert HOSTILE_COMMAND in page.attribute_values("title")
    assert "RUN echo '<script>alert(5)</script>" in "".join(page.text)


def test_hostile_json_round_trips(hostile_page: str) -> None:
    page = parse(hostile_page)
    treemap = page.figures[1]["data"][0]
    ids = treemap["ids"]
    assert "/data/" + NAME_WITH_SLASHES in ids
    assert "/data/" + HOSTILE_NAMES[0] in ids


def test_cli_report_default_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.html"
    assert main(["report", "--cdn", "-o", str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    assert "<title>layerlab report: rm-later (bundled sample)</title>" in text
    # Where the package is installed is nothing the reader needs.
    assert str(sample_path("rm-later").parent) not in text
    assert f"wrote {output}" in capsys.readouterr().out


def test_cli_report_samples_and_refs(tmp_path: Path) -> None:
    output = tmp_path / "out.html"
    reference = f"oci-archive:{sample_path('multistage')}"
    arguments = [
        "report",
        reference,
        "--sample",
        "squashed",
        "--cdn",
        "-o",
        str(output),
    ]
    assert main(arguments) == 0
    text = output.read_text(encoding="utf-8")
    assert "multistage (bundled sample)" in text
    assert "squashed (bundled sample)" in text
    assert 'id="image-2"' in text


def test_cli_report_unknown_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.html"
    assert main(["report", "--sample", "nope", "-o", str(output)]) == 2
    assert "no sample named 'nope'" in capsys.readouterr().err
    assert not output.exists()


def test_cli_report_keeps_input_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "image.tar"
    archive.write_bytes(sample_path("rm-later").read_bytes())
    before = archive.read_bytes()
    assert main(["report", f"oci-archive:{archive}", "-o", str(archive)]) == 2
    assert "is the input image" in capsys.readouterr().err
    assert archive.read_bytes() == before


@pytest.mark.parametrize(
    ("output", "message"),
    [("missing/out.html", "output directory"), (".", "is a directory")],
)
def test_cli_report_invalid_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, message: str
) -> None:
    target = tmp_path / output
    assert main(["report", "--cdn", "-o", str(target)]) == 2
    assert message in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_report_failure_keeps_previous_file(
    tmp_path: Path, rm_later: layerlab.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out.html"
    output.write_text("previous report", encoding="utf-8")

    def fail(*args: Any, **kwargs: Any) -> str:
        raise OSError(28, "No space left on device")

    # A full disk cannot be had on demand, so the final rename is made to fail.
    monkeypatch.setattr("layerlab._report.os.replace", fail)
    with pytest.raises(OSError, match="No space left") as caught:
        report(rm_later, output, inline_plotlyjs=False)
    # The error names the file the user asked for, not the temporary one.
    assert caught.value.filename == str(output)
    assert output.read_text(encoding="utf-8") == "previous report"
    assert [path.name for path in tmp_path.iterdir()] == ["out.html"]


def test_report_file_mode_follows_umask(
    tmp_path: Path, rm_later: layerlab.Image
) -> None:
    import os

    old = os.umask(0o027)
    try:
        written = report(rm_later, tmp_path / "out.html", inline_plotlyjs=False)
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == 0o640


def test_cli_samples_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samples", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [sample["name"] for sample in listed] == SAMPLE_NAMES
    for sample in listed:
        assert sample["reference"].startswith("oci-archive:")
        assert sample["size_bytes"] > 0


XSS_IMAGE_DIR = Path(__file__).parent / "images_xss"
XSS_NAMES = (
    "<img src=x onerror=alert(1)>.txt",
    "\"quoted\" & 'single' &amp;.txt",
    "naïve-日本語.txt",
    "long-" + "x" * 120 + ".txt",
    "<script>alert(3)<",
)


@pytest.mark.engine
def test_engine_built_hostile_image(docker_client: Any, busybox_base: str) -> None:
    tag = "layerlab-test/xss:latest"
    docker_client.images.build(
        path=str(XSS_IMAGE_DIR),
        tag=tag,
        network_mode="host",
        rm=True,
        forcerm=True,
        pull=False,
    )
    page = parse(render_report(f"docker-daemon:{tag}", inline_plotlyjs=False))

    text = "".join(page.text) + "\n".join(page.cell_texts())
    for name in XSS_NAMES:
        assert f"/data/{name}" in text
    assert "/data/<svg onload=alert(2)>" in text
    assert "<script>alert('label')</script>" in text
    assert "echo '<img src=x onerror=alert(4)>'" in text

    tags = {tag_name for tag_name, _ in page.tags}
    assert not tags & {"img", "svg", "b", "a"}
    for _, attributes in page.tags:
        assert not [name for name in attributes if name.startswith("on")]


def test_report_accepts_iterables(rm_later: layerlab.Image) -> None:
    text = render_report(iter([rm_later]), inline_plotlyjs=False)
    assert 'id="image-1"' in text
    assert 'id="image-2"' not in text


def test_reading_without_waste() -> None:
    with layerlab.open_image(str(sample_path("combined-run")), cache=False) as image:
        text = plain_reading(image)
    assert "all of it is visible in the final filesystem" in text
    assert "squashing would not make it smaller" in text
    assert "dive rates the image 100.0% efficient with 0 B" in text


def test_reading_overwritten_advice(tmp_path: Path) -> None:
    layers = [
        Layer([file("a.bin", b"a" * 5000), file("b.bin", b"b" * 100)]),
        Layer([file("a.bin", b"A" * 10)], created_by="/bin/sh -c make a.bin"),
    ]
    path = write_oci_archive(tmp_path / "overwrite.tar", layers)
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        text = plain_reading(image)
    # 5,000 of the 5,110 bytes stored.
    assert "5.0 kB of it (97.8%) cannot be seen" in text
    assert "The largest item is /a.bin (5.0 kB, overwritten)" in text
    assert "hidden by layer 1 (RUN make a.bin)" in text
    assert "keeps the old copy in the lower layer" in text
    # dive counts both copies of a.bin, 5,010 B, which rounds like 5,000 B.
    assert "dive's figure is larger (5,010 B against 5,000 B reclaimable)" in text


def test_waste_chart_by_directory_for_small_files(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "many.tar", large_layers(10_000))
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        sizes = image.waste.groupby("path", observed=True)["size"].sum()
        # The 20 largest paths hold under half the waste ...
        assert sizes.nlargest(20).sum() * 2 < sizes.sum()
        page = parse(render_report(image, inline_plotlyjs=False))
    assert "the chart sums it by directory" in "".join(page.text)
    labels = page.figures[-1]["layout"]["yaxis"]["ticktext"]
    # ... so the bars are the package directories, pkg007 (deleted) first.
    assert labels[0] == "/usr/share/pkg007/"
    assert all(label.startswith("/usr/share/pkg") for label in labels)


def test_waste_chart_by_path_for_few_paths(sample_page: str) -> None:
    page = parse(sample_page)
    assert "the chart sums it by directory" not in "".join(page.text)
    labels = page.figures[-1]["layout"]["yaxis"]["ticktext"]
    assert labels[0] == "/tmp/build/toolchain.bin"


def _layer_rows(page: str, layer: int) -> dict[str, list[Any]]:
    parser = PageParser()
    parser.feed(page)
    return {row[0]: row for row in parser.rows.get(f"image-1-files-{layer}", [])}


def test_rewritten_directory_shows_visible(tmp_path: Path) -> None:
    # The builder rewrites every directory a step touches. "kept" is rewritten
    # unchanged up to the top; "chmod" is rewritten, then changes mode.
    layers = [
        Layer([directory("kept"), directory("chmod"), file("kept/a", b"a")]),
        Layer([directory("kept"), directory("chmod"), file("kept/b", b"b")]),
        Layer([directory("chmod", mode=0o700), file("c", b"c")]),
    ]
    path = write_oci_archive(tmp_path / "dirs.tar", layers)
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        page = render_report(image, inline_plotlyjs=False, compress=False)
    first = _layer_rows(page, 0)
    assert first["/kept"][4:7] == ["yes", "", ["", None]]
    assert first["/chmod"][4] == "no"
    assert first["/chmod"][6][:2] == ["1", 1]
    # Rewrites that change nothing are left out of their layer's list.
    assert "/kept" not in _layer_rows(page, 1)
    assert "/chmod" in _layer_rows(page, 2)


def test_hidden_characters_never_reach_page(tmp_path: Path) -> None:
    # A command or a file name with U+202E reads backwards from there on,
    # and ESC starts a terminal sequence: both must show as escapes.
    command = "/bin/sh -c echo \x1b[2J \u202elive"
    layers = [Layer([file("a.txt", b"a" * 10)], created_by=command)]
    archive = write_oci_archive(tmp_path / "we\u202eird.tar", layers)
    with layerlab.open_image(f"oci-archive:{archive}", cache=False) as image:
        page = render_report(image, inline_plotlyjs=False, compress=False)
    assert "\u202e" not in page
    assert "\x1b" not in page
    assert "echo \\x1b[2J \\u202elive" in html.unescape(page)
    assert "we\\u202eird.tar" in page


def test_reading_without_layers(tmp_path: Path) -> None:
    path = write_oci_archive(tmp_path / "empty.tar", [])
    with layerlab.open_image(f"oci-archive:{path}", cache=False) as image:
        reading = plain_reading(image)
    assert reading.startswith("This image has no layers, so its filesystem is empty.")


@pytest.mark.parametrize("option", ["--max-rows", "--max-waste-rows"])
def test_cli_report_negative_row_caps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    output = tmp_path / "out.html"
    assert main(["report", option, "-5", "-o", str(output)]) == 2
    assert f"{option} must be 0 or more, not -5" in capsys.readouterr().err
    assert not output.exists()


def test_cli_report_keeps_archive_named_by_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The archive path is the longest existing part before a ":", so
    # app.tar:repo/name:tag still names app.tar.
    archive = write_docker_archive(
        tmp_path / "app.tar", [Layer([file("a", b"a")])], tag="web/app:1.0"
    )
    before = archive.read_bytes()
    for reference in (
        f"{archive}:web/app:1.0",
        f"docker-archive:{archive}:web/app:1.0",
    ):
        assert main(["report", reference, "-o", str(archive)]) == 2
        assert "is the input image" in capsys.readouterr().err
    assert archive.read_bytes() == before


def test_cli_report_never_inside_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = write_oci_layout(tmp_path / "layout", [Layer([file("a", b"a")])])
    index = layout / "index.json"
    before = index.read_bytes()
    assert main(["report", f"oci:{layout}", "-o", str(index)]) == 2
    assert "inside the input image" in capsys.readouterr().err
    assert index.read_bytes() == before
    assert main(["report", f"oci:{layout}", "-o", str(layout / "new.html")]) == 2
    assert not (layout / "new.html").exists()
