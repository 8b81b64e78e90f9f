"""The Frictionless Data Package descriptor (`datapackage.json`) of a dataset release.

Shape (chosen so that `frictionless validate datapackage.json` accepts the release and checks its
data, not only its metadata): profile `tabular-data-package`, **one resource per table**, whose
`path` is the table's CSV file. The Tabular Data Resource spec (v1) defines tabular data as CSV, and
frictionless-py reads Parquet only through pandas and JSON Lines only with extra plugins; on Parquet it
cannot even check `bytes` and `hash` (it reads the file through pyarrow, never through its byte
stream, and reports them as missing). So the CSV is the validated resource: field types,
`primaryKey` uniqueness, `rows`, `bytes` and `hash` are all checked by frictionless. The Parquet and
JSON Lines copies of the same rows are listed on the resource in `pulse:files` (custom properties
are allowed by the spec) with their own `bytes`, `hash` and media type, and the release tests read
them back with polars and DuckDB.

Types map from DuckDB to Table Schema; keys come from the declared model (`warehouse.ddl`), table
and column descriptions from the data dictionary (`warehouse/README.md`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from assets.exports.datasets import DatasetFormat, Relation
from warehouse.ddl import relation_keys
from warehouse.dictionary import relations as dictionary

MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "jsonl": "application/jsonl",
    "parquet": "application/vnd.apache.parquet",
}
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "UHUGEINT")


def table_schema_type(duck_type: str) -> str:
    """A DuckDB column type as a Table Schema field type (`any` for what has no counterpart)."""
    t = duck_type.upper()
    if t.endswith("]"):
        return "array"
    if t.startswith(("STRUCT", "MAP", "JSON")):
        return "object"
    if t in _INTEGERS:
        return "integer"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    if t.startswith("TIME"):
        return "time"
    if t == "INTERVAL":
        return "duration"
    if t in ("VARCHAR", "UUID", "BLOB") or t.startswith("ENUM"):
        return "string"
    return "any"


@dataclass(frozen=True)
class FileFacts:
    """What a descriptor says about one written file."""

    name: str
    bytes: int
    sha256: str


def resource_name(relation: Relation) -> str:
    """`core.packages` is already a valid resource name (lower case, digits, `-._/`)."""
    return relation.qualified.lower()


def build_descriptor(
    release_id: str,
    refresh_id: str | None,
    refreshed_at: datetime | None,
    created_at: datetime,
    relations: list[Relation],
    files: Mapping[tuple[str, DatasetFormat], FileFacts],
) -> dict:
    """The datapackage.json document; `files` maps (relation, format) to the file written."""
    keys, docs = relation_keys(), dictionary()
    resources = []
    for relation in relations:
        doc = docs.get(relation.qualified)
        fields = []
        for column, duck_type in relation.columns:
            spec = {"name": column, "type": table_schema_type(duck_type), "duckdb:type": duck_type}
            if doc and (documented := doc.column(column)) and documented.meaning:
                spec["description"] = documented.meaning
            fields.append(spec)
        schema: dict = {"fields": fields, "missingValues": [""]}
        if key := keys.get(relation.qualified):
            schema["primaryKey"] = list(key)
        csv = files[(relation.qualified, "csv")]
        resource = {
            "name": resource_name(relation),
            "profile": "tabular-data-resource",
            "path": csv.name,
            "format": "csv",
            "mediatype": MEDIA_TYPES["csv"],
            "encoding": "utf-8",
            "bytes": csv.bytes,
            "hash": f"sha256:{csv.sha256}",
            "rows": relation.rows,
            "schema": schema,
            "pulse:files": [
                {"path": facts.name, "format": fmt, "mediatype": MEDIA_TYPES[fmt], "bytes": facts.bytes,
                 "hash": f"sha256:{facts.sha256}"}
                for (name, fmt), facts in files.items() if name == relation.qualified
            ],
        }
        if doc and doc.description:
            resource["description"] = doc.description
        resources.append(resource)
    descriptor: dict = {
        "profile": "tabular-data-package",
        "name": "package-pulse",
        "title": "Package Pulse dataset release",
        "description": "The core, health, history and marts tables of one Package Pulse refresh, each as "
                       "CSV (the resource), Parquet and JSON Lines (`pulse:files`). Column meanings: "
                       "warehouse/README.md.",
        "version": release_id,
        "created": created_at.isoformat().replace("+00:00", "Z"),
        "pulse:release_id": release_id,
        "pulse:refresh_id": refresh_id,
        "pulse:refreshed_at": refreshed_at.isoformat().replace("+00:00", "Z") if refreshed_at else None,
        "resources": resources,
    }
    return descriptor
