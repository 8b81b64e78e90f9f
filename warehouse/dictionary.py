"""The data dictionary (`warehouse/README.md`) read as data: per relation its description, key and columns.

The README is the one place where a person explains what a table and each of its columns mean, and
`tests/warehouse/test_dictionary.py` keeps it equal to the database (types, keys). Reading it here lets
the Dagster UI (column schemas, descriptions) and the dataset release say the same without a second copy.

Format of a section (the test's, too): a `### schema.name` heading; a first paragraph starting with
`key: col.` / `key: (a, b).` / `no key: ...`, the rest of it the description; a Markdown table with the
header `| column | type | meaning |` and one row per column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

README = Path(__file__).with_name("README.md")

_HEADING = re.compile(r"### (\w+\.\w+)\s*$")
_ROW = re.compile(r"\| (\w+) \| ([^|]+?) \| (.+?) \|$")
_KEY = re.compile(r"key: (?:\(([\w, ]+)\)|(\w+))\.\s*")
_NO_KEY = re.compile(r"no key:?\s*")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the DuckDB type as documented (e.g. `TIMESTAMP WITH TIME ZONE`, `VARCHAR[]`)
    meaning: str


@dataclass(frozen=True)
class Relation:
    name: str  # schema.name
    description: str  # the first paragraph without its key clause
    key: tuple[str, ...]  # () = no key
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def parse(text: str) -> dict[str, Relation]:
    """Every `### schema.name` section of a data dictionary text (see the module docstring)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if heading := _HEADING.match(line):
            current = sections.setdefault(heading.group(1), [])
        elif line.startswith("## "):  # a new chapter ends the last section
            current = None
        elif current is not None:
            current.append(line)
    return {name: _relation(name, lines) for name, lines in sections.items()}


def _relation(name: str, lines: list[str]) -> Relation:
    paragraph: list[str] = []
    columns: list[Column] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("|"):
            row = _ROW.match(stripped)
            if row and row.group(1) != "column":
                columns.append(Column(row.group(1), row.group(2).strip(), row.group(3).strip()))
        elif stripped and not columns:
            paragraph.append(stripped)
        elif not stripped and paragraph and not columns:
            paragraph.append("")  # paragraph break before the table
    first = " ".join(_first_paragraph(paragraph))
    key: tuple[str, ...] = ()
    if match := _KEY.match(first):
        key = tuple(k.strip() for k in (match.group(1) or match.group(2)).split(","))
        first = first[match.end():]
    elif match := _NO_KEY.match(first):
        first = first[match.end():]
    description = first[:1].upper() + first[1:]
    return Relation(name, description.strip(), key, tuple(columns))


def _first_paragraph(lines: list[str]) -> list[str]:
    return lines[:lines.index("")] if "" in lines else lines


@cache
def relations() -> dict[str, Relation]:
    """The shipped data dictionary, read once per process."""
    return parse(README.read_text(encoding="utf-8"))

