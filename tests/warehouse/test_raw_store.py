"""The raw archive on object storage (warehouse/raw_store.py) against a real S3 HTTP server (moto's).

Round trips with partitioned names, malicious remote keys, an unreachable store during a crawl (the
batch stays local, a later push uploads it) and core's refusal to rebuild from an incomplete cache.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from pipelines.settings import Settings, SettingsError
from tests.s3_server import DUMMY_SECRET, free_port, s3_env, s3_server
from warehouse.archive import RAW_SCHEMA, RawResponse, batch_files, write_batch
from warehouse.raw_store import RawStore, RawStoreError, display_url, mirroring, pull_for_core

PREFIX = "pulse/raw"


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture
def url(s3, monkeypatch, request):
    """A prefix of its own per test in the shared bucket, the AWS variables pointing at the server."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3.bucket}/{request.node.name}/raw"


def row(subject: str = "github:a/b", status: int = 200) -> RawResponse:
    return RawResponse(request_key=f"github:repo:{subject}", source="github", endpoint="repo", subject=subject,
                       url="/repos/a/b", status=status, body='{"stargazers_count": 1}')


def home(tmp_path: Path, name: str, url: str | None) -> SimpleNamespace:
    """What `mirroring`/`pull_for_core` read of the settings: the raw folder and PULSE_RAW_URL."""
    return SimpleNamespace(raw_dir=tmp_path / name / "raw", raw_url=url)


def names(raw_dir: Path) -> list[str]:
    return sorted(f"{p.parent.name}/{p.name}" for p in batch_files(raw_dir))


def test_upload_list_pull_round_trip_with_partitions(s3, url, tmp_path):
    first = home(tmp_path, "first", url)
    with mirroring(first) as synced:  # each batch is uploaded as write_batch renames it into place
        write_batch(first.raw_dir, "github", [row()], "run-1", partition="github-2")
        write_batch(first.raw_dir, "github", [row("github:c/d")], "run-1")
        write_batch(first.raw_dir, "pypi", [row("pypi:x")], "run-1", partition="pypi-0")
        prefix = url.removeprefix(f"s3://{s3.bucket}/")
        assert [k.removeprefix(prefix + "/") for k in s3.keys(prefix)] == names(first.raw_dir)
    assert synced is not None and synced.metadata()["raw_store_pushed"] == 0  # nothing left to push
    assert synced.metadata()["raw_store_unpushed"] == 0

    store = RawStore(url)
    assert {s: sorted(n) for s, n in store.remote_batches().items()} == {
        "github": sorted(p.name for p in (first.raw_dir / "github").iterdir()),
        "pypi": [p.name for p in (first.raw_dir / "pypi").iterdir()]}

    second = home(tmp_path, "second", url)
    only = store.pull(second.raw_dir, partitions=["github-2"])  # a crawl slice: its partitions + unpartitioned
    assert sorted(only.pulled.elements()) == ["github", "github"]
    assert not any(".pypi-0." in n for n in names(second.raw_dir))
    pulled = RawStore(url).pull(second.raw_dir)
    assert pulled.metadata()["raw_store_pulled"] == 1  # the pypi batch; the others are local already
    assert names(second.raw_dir) == names(first.raw_dir)
    for path in batch_files(first.raw_dir):
        assert (second.raw_dir / path.parent.name / path.name).read_bytes() == path.read_bytes()
    assert pl.read_parquet(batch_files(second.raw_dir), schema=RAW_SCHEMA).height == 3
    assert not [p for p in second.raw_dir.rglob("*") if p.name.startswith(".")]  # no temporary file left
    assert RawStore(url).pull(second.raw_dir).metadata()["raw_store_pulled"] == 0  # names compared: nothing new


def test_malicious_remote_keys_are_skipped_and_nothing_lands_outside_raw(s3, url, tmp_path, caplog):
    source = home(tmp_path, "source", url)
    good = write_batch(source.raw_dir, "github", [row()], "run-1")
    assert RawStore(url).push(source.raw_dir).metadata()["raw_store_pushed"] == 1
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    parquet = good.read_bytes()
    planted = [f"{prefix}/../../etc/x.parquet", f"{prefix}/github/../../x.parquet", f"{prefix}/github/notes.txt",
               f"{prefix}/Bad/{good.name}", f"{prefix}/github/sub/{good.name}", f"{prefix}/github/.{good.name}.tmp",
               f"{prefix}/pypi/20261202T000000000000-0000000a.parquet"]  # a batch name, not Parquet
    for key in planted:
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=parquet if "pypi" not in key else b"not parquet")
    s3.client.put_object(Bucket=s3.bucket, Key=f"{prefix}x/github/{good.name}", Body=parquet)  # another prefix

    target = home(tmp_path / "pod", "home", url)
    with caplog.at_level(logging.WARNING):
        stats = RawStore(url).pull(target.raw_dir)
    assert names(target.raw_dir) == [f"github/{good.name}"]
    assert stats.metadata()["raw_store_pulled"] == 1
    files = sorted(p.relative_to(tmp_path / "pod") for p in (tmp_path / "pod").rglob("*") if p.is_file())
    assert files == [Path("home/raw/github") / good.name]
    assert not (tmp_path / "etc").exists() and not (tmp_path / "x.parquet").exists()
    warned = caplog.text
    for shown in ("../../etc/x.parquet", "github/../../x.parquet", "github/notes.txt", f"Bad/{good.name}",
                  f"github/sub/{good.name}", "pypi/20261202T000000000000-0000000a.parquet"):
        assert shown in warned, shown


def test_an_unreachable_store_leaves_batches_local_and_a_later_push_uploads_them(s3, url, tmp_path, monkeypatch,
                                                                                  caplog):
    crawl = home(tmp_path, "crawl", url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with caplog.at_level(logging.WARNING), mirroring(crawl) as synced:
        write_batch(crawl.raw_dir, "github", [row()], "run-1", partition="github-0")  # never raises
        write_batch(crawl.raw_dir, "github", [row("github:c/d")], "run-1", partition="github-0")
    assert synced is not None
    assert synced.metadata() == {"raw_store_pushed": 0, "raw_store_pushed_bytes": 0, "raw_store_unpushed": 2,
                                 "raw_store_pulled": 0, "raw_store_pulled_bytes": 0}
    assert synced.error is not None and f"the raw archive at {url} could not be" in synced.error
    assert len(names(crawl.raw_dir)) == 2  # the crawl's batches are safe on the local disk
    assert "stay local" in caplog.text
    assert DUMMY_SECRET not in caplog.text and DUMMY_SECRET not in synced.error

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)  # the store is back
    pushed = RawStore(url).push(crawl.raw_dir)
    assert pushed.metadata()["raw_store_pushed"] == 2 and pushed.metadata()["raw_store_unpushed"] == 0
    assert pushed.metadata()["raw_store_pushed_bytes"] == sum(p.stat().st_size for p in batch_files(crawl.raw_dir))
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    assert [k.removeprefix(prefix + "/") for k in s3.keys(prefix)] == names(crawl.raw_dir)
    assert RawStore(url).push(crawl.raw_dir).metadata()["raw_store_pushed"] == 0  # reconciled


def test_core_refuses_an_unreachable_store_unless_its_cache_holds_all_core_was_built_from(url, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    empty = home(tmp_path, "empty", url)
    built_from = ["/elsewhere/raw/github/20261201T000000000000-0000000b.parquet"]
    for seen in ([], built_from):  # a first build, or a warehouse built from batches this pod lacks
        with pytest.raises(RawStoreError, match=rf"the raw archive at {url} could not be read: .*not rebuilt"):
            pull_for_core(empty, seen)
    assert not empty.raw_dir.exists()  # nothing was written

    full = home(tmp_path, "full", url)
    batch = write_batch(full.raw_dir, "github", [row()], "run-1")
    newer = write_batch(full.raw_dir, "github", [row("github:c/d")], "run-2")
    with pytest.raises(RawStoreError, match="lacks 1 of the 2 batches"):  # a partial cache
        pull_for_core(full, [str(batch), built_from[0]])
    stats = pull_for_core(full, [str(batch)])  # the cache holds all the current core saw, and more: go on
    assert stats is not None and stats.error and stats.metadata()["raw_store_pulled"] == 0
    assert newer.exists()


def test_unset_changes_nothing(tmp_path):
    local = home(tmp_path, "local", None)
    with mirroring(local) as synced:
        write_batch(local.raw_dir, "github", [row()], "run-1")
    assert synced is None
    assert pull_for_core(local, []) is None
    assert Settings.from_mapping({"PULSE_HOME": str(tmp_path)}).raw_url is None


def test_memory_and_file_urls_round_trip(tmp_path):
    for url in ("memory://pulse-test-raw", (tmp_path / "bucket").as_uri()):
        first, second = home(tmp_path, f"a-{len(url)}", url), home(tmp_path, f"b-{len(url)}", url)
        write_batch(first.raw_dir, "pypi", [row("pypi:x")], "run-1", partition="pypi-1")
        assert RawStore(url).push(first.raw_dir).metadata()["raw_store_pushed"] == 1
        assert RawStore(url).pull(second.raw_dir).metadata()["raw_store_pulled"] == 1
        assert names(second.raw_dir) == names(first.raw_dir)


def test_the_setting_is_checked_and_never_shows_a_secret():
    settings = Settings.from_mapping({"PULSE_RAW_URL": "s3://bucket/pulse/raw/"})
    assert settings.raw_url == "s3://bucket/pulse/raw"
    for bad in ("http://host/raw", "bucket/raw", "s3://key:sekrit@bucket/raw", "s3://bucket/raw?token=sekrit",
                "file://relative/raw"):
        with pytest.raises(SettingsError, match="PULSE_RAW_URL") as caught:
            Settings.from_mapping({"PULSE_RAW_URL": bad})
        assert "sekrit" not in str(caught.value)
    assert display_url("az://user:pw@container/raw?sig=abc#x") == "az://container/raw"


def test_storage_errors_show_no_query_string(monkeypatch):
    from warehouse.raw_store import _reason

    text = _reason(RuntimeError("PUT https://acct.blob.core.windows.net/c/raw/x?sv=1&sig=SECRET failed\nDebug"))
    assert "SECRET" not in text and "https://acct.blob.core.windows.net/c/raw/x" in text
    assert s3_env("http://h")["AWS_ALLOW_HTTP"] == "true"
