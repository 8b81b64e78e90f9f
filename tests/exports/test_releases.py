"""Dataset releases: the Frictionless descriptor (validated by the `frictionless` library itself, data
included), every file read back by polars and DuckDB, retention, and the atomic `latest` pointer.

The descriptor rules come from the Data Package / Tabular Data Resource specs (specs.frictionlessdata.io):
`hash` is `<algorithm>:<hex>`, `bytes` the file size, a `tabular-data-package` holds only tabular resources.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

import dagster as dg
import duckdb
import frictionless
import polars as pl
import pytest

from assets.exports.assets import release_metadata
from assets.exports.releases import LATEST, LATEST_FILE, latest_release, prune_releases, publish_release
from pipelines.resources import PulseResource
from pipelines.settings import Settings, SettingsError
from tests.fixtures.sample import write_sample_published
from warehouse.ddl import relation_keys

NOW = datetime(2026, 11, 28, 4, 5, 6, tzinfo=UTC)
REFRESH = "0f1e2d3c-aaaa-bbbb-cccc-000000000000"
RELEASE_ID = "20261128T040506Z-0f1e2d3c"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("release_home")
    write_sample_published(home, NOW, refresh_id=REFRESH, scored=True)
    return home


@pytest.fixture(scope="module")
def release(home):
    """One release as the asset writes it (publish_release + release_metadata; even a direct call of
    the asset builds a Dagster context for seconds: the e2e refresh runs the asset in the real job)."""
    settings = PulseResource(home=str(home)).settings()
    release = publish_release(settings.published_path, settings.releases_dir, settings.releases_keep)
    return settings.releases_dir, release_metadata(release)


def _meta(value):
    """A metadata entry's value, whether Dagster wrapped it (a run) or not (a direct call)."""
    return value.value if isinstance(value, dg.MetadataValue) else value


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_descriptor_validates_with_frictionless(release):
    releases, metadata = release
    assert _meta(metadata["release_id"]) == RELEASE_ID and _meta(metadata["refresh_id"]) == REFRESH
    descriptor_path = releases / RELEASE_ID / "datapackage.json"
    report = frictionless.validate(str(descriptor_path))
    errors = [(task.name, e.type, e.note) for task in report.tasks for e in task.errors] + \
             [(e.type, e.note) for e in report.errors]
    assert report.valid, errors[:10]
    descriptor = json.loads(descriptor_path.read_text())
    assert descriptor["profile"] == "tabular-data-package"
    assert descriptor["pulse:refresh_id"] == REFRESH and descriptor["pulse:refreshed_at"] == "2026-11-28T04:05:06Z"
    names = {r["name"] for r in descriptor["resources"]}
    assert {"core.packages", "core.repositories", "health.package_scores", "history.package_metrics",
            "history.refreshes", "marts.package_activity", "marts.grid_health"} <= names
    assert not {n for n in names if n.startswith(("catalogue.", "raw.", "main."))}
    keys = relation_keys()
    by_name = {r["name"]: r for r in descriptor["resources"]}
    for name, resource in by_name.items():
        assert resource["schema"].get("primaryKey", []) == list(keys[name]), name
    packages = by_name["core.packages"]
    fields = {f["name"]: f for f in packages["schema"]["fields"]}
    assert fields["id"]["type"] == "integer" and fields["python_versions"]["type"] == "array"
    assert fields["created"]["type"] == "datetime" and fields["id"]["description"] == "catalogue id"
    assert packages["description"] and not packages["description"].startswith("key")
    assert packages["rows"] == 9


def test_every_file_reads_back_with_polars_and_duckdb(release):
    releases, metadata = release
    folder = releases / RELEASE_ID
    descriptor = json.loads((folder / "datapackage.json").read_text())
    readers = {"parquet": pl.read_parquet, "csv": pl.read_csv, "jsonl": pl.read_ndjson}
    duck = {"parquet": "read_parquet", "csv": "read_csv", "jsonl": "read_json"}
    con = duckdb.connect()
    listed = set()
    for resource in descriptor["resources"]:
        files = resource["pulse:files"]
        assert sorted(f["format"] for f in files) == ["csv", "jsonl", "parquet"]
        columns = [f["name"] for f in resource["schema"]["fields"]]
        for entry in files:
            path = folder / entry["path"]
            listed.add(entry["path"])
            assert entry["hash"] == f"sha256:{_sha256(path)}" and entry["bytes"] == path.stat().st_size
            if resource["rows"]:  # an empty JSON Lines file has no columns to read
                frame = readers[entry["format"]](path)
                assert frame.height == resource["rows"] and sorted(frame.columns) == sorted(columns), entry["path"]
                if entry["format"] == "jsonl":  # polars orders inferred keys its own way; the file keeps ours
                    assert list(json.loads(path.read_text().splitlines()[0])) == columns
                else:
                    assert frame.columns == columns, entry["path"]
            count = con.execute(f"SELECT count(*) FROM {duck[entry['format']]}(?)", [str(path)]).fetchall()[0][0]
            assert count == resource["rows"], entry["path"]
    assert listed == {p.name for p in folder.iterdir()} - {"datapackage.json"}
    assert _meta(metadata["files"]) == len(listed)
    assert _meta(metadata["bytes"]) == sum((folder / name).stat().st_size for name in listed)
    assert _meta(metadata["row_counts"]) == {r["name"]: r["rows"] for r in descriptor["resources"]}
    # lists stay lists in every format
    topics = pl.read_parquet(folder / "core.repositories.parquet")["topics"]
    assert topics.dtype == pl.List(pl.String)
    assert pl.read_ndjson(folder / "core.repositories.jsonl")["topics"].to_list() == topics.to_list()
    csv_topics = pl.read_csv(folder / "core.repositories.csv")["topics"].to_list()
    assert [json.loads(t) if t is not None else None for t in csv_topics] == topics.to_list()


def test_latest_points_to_the_release(release):
    releases, _ = release
    assert os.readlink(releases / LATEST) == RELEASE_ID
    assert (releases / LATEST_FILE).read_text().strip() == RELEASE_ID
    assert (releases / LATEST / "datapackage.json").exists()
    assert latest_release(releases) == RELEASE_ID


def test_retention_keeps_the_newest_and_never_the_latest(home, tmp_path):
    releases = tmp_path / "releases"
    for old in ("20250101T000000Z-aaaaaaaa", "20250201T000000Z-bbbbbbbb", "20250301T000000Z-cccccccc"):
        (releases / old).mkdir(parents=True)
    (releases / "notes").mkdir()  # not a release: never touched
    release = publish_release(home / "published.duckdb", releases, keep=2)
    assert release.pruned == ("20250201T000000Z-bbbbbbbb", "20250101T000000Z-aaaaaaaa")
    assert sorted(p.name for p in releases.iterdir()) == \
        ["20250301T000000Z-cccccccc", RELEASE_ID, LATEST_FILE, LATEST, "notes"]
    # `latest` moved back to an old release (a rollback): pruning keeps it even beyond `keep`
    (releases / LATEST).unlink()
    os.symlink("20250301T000000Z-cccccccc", releases / LATEST)
    assert prune_releases(releases, keep=1) == []
    (releases / LATEST).unlink()  # a filesystem without symlinks: the LATEST file decides
    (releases / LATEST_FILE).write_text("20250301T000000Z-cccccccc\n")
    assert prune_releases(releases, keep=1) == []
    (releases / LATEST_FILE).write_text(f"{RELEASE_ID}\n")
    assert prune_releases(releases, keep=1) == ["20250301T000000Z-cccccccc"]


def test_a_failure_mid_write_leaves_the_previous_release_and_latest(home, tmp_path):
    releases = tmp_path / "releases"
    first = publish_release(home / "published.duckdb", releases, keep=3)
    before = {p.name: _sha256(p) for p in first.path.iterdir()}
    written = []

    def fail_on_fourth(path):
        written.append(path)
        if len(written) == 4:
            raise OSError("disk full (simulated)")

    # the same snapshot again (same release id): the folder must not be touched until the new one is whole
    with pytest.raises(OSError, match="disk full"):
        publish_release(home / "published.duckdb", releases, keep=3, after_file=fail_on_fourth)
    assert written and all(not p.exists() for p in written), "the staging folder is removed"
    assert latest_release(releases) == first.release_id and os.readlink(releases / LATEST) == first.release_id
    assert {p.name: _sha256(p) for p in first.path.iterdir()} == before
    assert sorted(p.name for p in releases.iterdir()) == [first.release_id, LATEST_FILE, LATEST]
    # and a whole re-publish of the same refresh replaces the folder in one rename
    again = publish_release(home / "published.duckdb", releases, keep=3)
    assert again.path == first.path and json.loads((again.path / "datapackage.json").read_text())["resources"]


def test_the_retention_setting():
    assert Settings.from_mapping({}).releases_keep == 7
    assert Settings.from_mapping({"PULSE_RELEASES_KEEP": " 3 "}).releases_keep == 3
    for bad in ("0", "-1", "seven"):
        with pytest.raises(SettingsError, match="PULSE_RELEASES_KEEP"):
            Settings.from_mapping({"PULSE_RELEASES_KEEP": bad})
