"""``layerlab.columns``: help() and repr() list every table's columns."""

from __future__ import annotations

import pydoc
from pathlib import Path

import pandas as pd
import pytest
from handmade import Layer, file, write_oci_archive

import layerlab
from layerlab import _schema

TABLES = {
    "layers": "LAYERS_COLUMNS",
    "files": "FILES_COLUMNS",
    "filesystem": "FILESYSTEM_COLUMNS",
    "waste": "WASTE_COLUMNS",
    "history": "HISTORY_COLUMNS",
    "entries": "ENTRY_COLUMNS",
}


def test_columns_is_the_schema_module() -> None:
    # Code that reads layerlab.columns.FILES_COLUMNS and friends keeps working.
    assert layerlab.columns is _schema
    assert layerlab.columns.ENTRY_COLUMNS["path"] == "string"
    assert "metadata" in layerlab.columns.CHANGES


@pytest.mark.parametrize("table", list(TABLES))
def test_every_column_described(table: str) -> None:
    columns = getattr(layerlab.columns, TABLES[table])
    described = layerlab.columns.describe(table)
    assert list(described["column"]) == list(columns)
    assert described["description"].str.len().min() > 0
    for name, dtype in zip(described["column"], described["dtype"], strict=True):
        expected = columns[name]
        if isinstance(expected, pd.CategoricalDtype):
            assert dtype == "category", name
        else:
            assert dtype == expected, name


def _column_lines(text: str, table: str) -> list[str]:
    """Return the lines of ``table``'s block that start a column.

    A block is a header, then one line per column indented 4 more spaces.
    Wrapped text continues on lines indented differently.
    """
    start = text.index(f"{table} (")
    header_indent = start - (text.rfind("\n", 0, start) + 1)
    block = []
    for line in text[start:].splitlines()[1:]:
        if not line.strip():
            break
        block.append(line)
    indent = header_indent + 4
    return [line for line in block if len(line) - len(line.lstrip()) == indent]


@pytest.mark.parametrize("table", list(TABLES))
def test_help_lists_columns_with_dtype(table: str) -> None:
    text = pydoc.render_doc(layerlab.columns, renderer=pydoc.plaintext)
    columns = getattr(layerlab.columns, TABLES[table])
    lines = _column_lines(text, table)
    assert [line.split()[0] for line in lines] == list(columns)
    described = layerlab.columns.describe(table).set_index("column")
    for line in lines:
        name, dtype, first_word = line.split()[:3]
        assert dtype == described.loc[name, "dtype"], name
        assert described.loc[name, "description"].startswith(first_word), name


def test_repr_lists_tables_and_values() -> None:
    text = repr(layerlab.columns)
    assert text.startswith("layerlab.columns:")
    for table in TABLES:
        assert _column_lines(text, table), table
    for name in ("KINDS:", "CHANGES:", "WASTE_REASONS:"):
        assert name in text
    assert "whiteout" in text
    assert "a chmod or chown that copies the whole file" in text


def test_help_text_fits_terminal() -> None:
    text = pydoc.render_doc(layerlab.columns, renderer=pydoc.plaintext)
    start = text.index("Tables and columns")
    end = text.index("FUNCTIONS")
    assert max(len(line) for line in text[start:end].splitlines()) <= 88


def test_describe_unknown_table() -> None:
    with pytest.raises(KeyError, match="layers, files"):
        layerlab.columns.describe("layer")


def test_tables_have_documented_columns(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "i.tar", [Layer([file("a", b"1")])])
    image = layerlab.open_image(str(archive))
    for table in ("layers", "files", "filesystem", "waste", "history"):
        frame = getattr(image, table)
        assert list(frame.columns) == list(layerlab.columns.describe(table)["column"])
    assert list(image.entries(0).columns) == list(
        layerlab.columns.describe("entries")["column"]
    )
