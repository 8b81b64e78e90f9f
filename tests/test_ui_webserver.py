"""The real Dagster webserver serves this code location, and a run launched through it tells its story.

One `dagster-webserver` subprocess on a free port, with a temporary DAGSTER_HOME and
the crawl pointed at a running simulator (a small world). Through Dagster's own Python GraphQL client
(`dagster_graphql.DagsterGraphQLClient`) the test launches the `refresh` job, waits for it, and reads
back what the UI shows: the asset groups, job and schedule; every table asset's description, owners,
kinds and column schema before any run; and the run's materializations with their metadata (row
counts, column schemas, table names, crawl numbers, Markdown previews) and its asset check results.

Launching from the webserver without a daemon: the instance uses the `DefaultRunCoordinator` (the
queued one would wait for the daemon) and the default run launcher starts the run in a subprocess;
the run config keeps every step in that one process (`in_process`), so no step pays a fresh
interpreter and import of the code location.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dagster_graphql import DagsterGraphQLClient

from simulator.server import SimServer, start_in_thread
from tests.e2e.conftest import pulse_env

pytestmark = [
    pytest.mark.slow,  # starts the Dagster webserver and runs a refresh through it
    # dagster_graphql's `_execute` still passes gql's older keyword arguments
    pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = 40  # a small simulator world: the run must stay a few seconds

# A webserver-launched run without the daemon: runs start at once (DefaultRunCoordinator), the writer
# pool still holds one step at a time.
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
concurrency:
  pools:
    default_limit: 1
"""

DEFINITIONS = """
{
  assetNodes {
    assetKey { path } groupName description kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    metadataEntries { label ...Entry }
    assetChecksOrError { ... on AssetChecks { checks { name jobNames } } }
  }
  repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } jobs { name }
                                                               schedules { name } } } }
}
"""

LOGS = """
query Logs($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MaterializationEvent { assetKey { path } metadataEntries { label ...Entry } }
        ... on AssetCheckEvaluationEvent { evaluation { checkName success assetKey { path } } }
      }
    }
    ... on PythonError { message }
  }
}
"""

ENTRY = """
fragment Entry on MetadataEntry {
  __typename
  ... on IntMetadataEntry { intValue }
  ... on FloatMetadataEntry { floatValue }
  ... on TextMetadataEntry { text }
  ... on BoolMetadataEntry { boolValue }
  ... on MarkdownMetadataEntry { mdStr }
  ... on JsonMetadataEntry { jsonString }
  ... on TableSchemaMetadataEntry {
    schema { columns { name type description constraints { nullable unique other } } constraints { other } }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _value(entry: dict):
    """The value of one GraphQL metadata entry, by its type."""
    for field in ("intValue", "floatValue", "text", "boolValue", "mdStr", "schema"):
        if field in entry:
            return entry[field]
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    return entry["__typename"]


def _entries(node: dict) -> dict:
    return {entry["label"]: _value(entry) for entry in node["metadataEntries"]}


@dataclass
class Webserver:
    client: DagsterGraphQLClient
    sim: SimServer
    home: Path

    def query(self, text: str, variables: dict | None = None) -> dict:
        return self.client._execute(text + ENTRY, variables)  # the client has no method for these reads


@pytest.fixture(scope="module")
def webserver(tmp_path_factory) -> Iterator[Webserver]:
    sim = start_in_thread(packages=PACKAGES, seed=7)
    home = tmp_path_factory.mktemp("ui_pulse_home")
    dagster_home = tmp_path_factory.mktemp("ui_dagster_home")
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    port = _free_port()
    env = pulse_env(sim, home, DAGSTER_HOME=str(dagster_home))
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=dagster_home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:  # the code location is loaded once the asset graph answers
                answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ assetNodes { id } }"},
                                    timeout=10).json()
                if answer.get("data", {}).get("assetNodes"):
                    break
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.3)
        else:
            stderr = process.stderr.read().decode()[-3000:] if process.poll() is not None else "no answer in time"
            pytest.fail(f"the webserver did not serve the code location: {stderr}")
        yield Webserver(DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60), sim, home)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        sim.stop()


TABLE_GROUPS = ("catalogue", "core", "health", "history", "marts")


def test_the_webserver_runs_refresh_and_tells_its_story(webserver):
    """One test, so that pytest-xdist never starts a second webserver and run for a sibling test."""
    definitions = webserver.query(DEFINITIONS)
    shows_assets_by_layer(definitions)
    table_assets_carry_their_dictionary_entry(definitions)
    events = launch_refresh(webserver, definitions)
    materializations_carry_table_metadata(webserver, events)
    asset_checks_reported(definitions, events)


def shows_assets_by_layer(definitions: dict) -> None:
    groups = {node["groupName"] for node in definitions["assetNodes"]}
    assert {"catalogue", "raw", "core", "health", "history", "marts", "exports"} <= groups
    repository = definitions["repositoriesOrError"]["nodes"][0]
    assert "refresh" in {job["name"] for job in repository["jobs"]}
    assert "daily_refresh" in {schedule["name"] for schedule in repository["schedules"]}


def table_assets_carry_their_dictionary_entry(definitions: dict) -> None:
    """Before any run: description, owner, kinds, table name and a described column schema."""
    tables = [node for node in definitions["assetNodes"] if node["groupName"] in TABLE_GROUPS]
    assert len(tables) >= 25
    for node in tables:
        name = ".".join(node["assetKey"]["path"])
        meta = _entries(node)
        assert meta["dagster/table_name"] == f"warehouse.{name}", name
        columns = meta["dagster/column_schema"]["columns"]
        assert columns and all(c["description"] for c in columns), name  # every column explained
        assert node["description"], name
        assert "package-pulse" in [o["team"].removeprefix("team:") for o in node["owners"] if "team" in o], name
        assert "duckdb" in node["kinds"], name
    packages = next(n for n in tables if n["assetKey"]["path"] == ["core", "packages"])
    id_column = next(c for c in _entries(packages)["dagster/column_schema"]["columns"] if c["name"] == "id")
    assert id_column["type"] == "BIGINT" and id_column["constraints"]["unique"]
    assert not id_column["constraints"]["nullable"]


def launch_refresh(webserver: Webserver, definitions: dict) -> list[dict]:
    """Launch `refresh` through the client, wait for it, and return the run's events."""
    repository = definitions["repositoriesOrError"]["nodes"][0]
    run_id = webserver.client.submit_job_execution(
        "refresh", repository_location_name=repository["location"]["name"], repository_name=repository["name"],
        run_config={"execution": {"config": {"in_process": {}}}},
    )
    deadline = time.monotonic() + 180
    status = None
    while time.monotonic() < deadline:
        status = webserver.client.get_run_status(run_id)
        if status.value in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(0.5)
    events: list[dict] = []
    cursor = None
    while True:
        answer = webserver.query(LOGS, {"runId": run_id, "cursor": cursor})["logsForRun"]
        assert answer["__typename"] == "EventConnection", answer
        events += answer["events"]
        cursor = answer["cursor"]
        if not answer["hasMore"]:
            break
    assert status is not None and status.value == "SUCCESS", (status, [
        e for e in events if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")])
    return events


def materializations_carry_table_metadata(webserver: Webserver, events: list[dict]) -> None:
    materialized = {"/".join(e["assetKey"]["path"]): _entries(e) for e in events
                    if e["__typename"] == "MaterializationEvent"}
    for key in ("catalogue/packages", "core/packages", "core/crawl_errors", "health/package_scores",
                "history/package_metrics", "marts/package_activity"):
        meta = materialized[key]
        assert isinstance(meta["dagster/row_count"], int), key
        assert meta["dagster/column_schema"]["columns"], key
        assert meta["dagster/table_name"] == "warehouse." + key.replace("/", "."), key
    # what the simulated djangopackages API serves is the truth: its count, its stars (repo_watchers)
    served = httpx.get(f"{webserver.sim.url}/api/v4/packages/", params={"limit": 1000}, timeout=10).json()
    assert materialized["catalogue/packages"]["dagster/row_count"] == served["count"] == PACKAGES
    assert materialized["core/packages"]["dagster/row_count"] == PACKAGES
    by_stars = sorted(served["results"], key=lambda p: (-p["repo_watchers"], p["id"]))
    top = materialized["core/packages"]["most_starred"]
    slugs = [line.split(" | ")[1] for line in top.splitlines()[2:]]
    assert slugs == [p["slug"] for p in by_stars[:10]]
    assert "| last seen |" in materialized["core/crawl_errors"]["newest"]
    assert "| band |" in materialized["health/package_scores"]["distribution"]
    assert f"| core.packages | {PACKAGES} |" in materialized["exports/published_warehouse"]["tables"]
    github = materialized["raw/github"]
    assert github["requests"] > 0 and github["packages_due"] > 0
    assert github["packages_done"] == github["packages_due"]
    assert 0.0 <= github["ratio_304"] <= 1.0 and isinstance(github["waited_s"], float)
    assert all(isinstance(github[f"errors_{kind}"], int) for kind in ("gone", "not_found", "transient"))


def asset_checks_reported(definitions: dict, events: list[dict]) -> None:
    """Every check the UI lists for the `refresh` job was evaluated in the run, and passed on this world."""
    evaluated = {f"{'/'.join(e['evaluation']['assetKey']['path'])}:{e['evaluation']['checkName']}":
                 e["evaluation"]["success"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"}
    defined = {f"{'/'.join(node['assetKey']['path'])}:{check['name']}" for node in definitions["assetNodes"]
               for check in node["assetChecksOrError"].get("checks", []) if "refresh" in check["jobNames"]}
    assert "catalogue/packages:plausible" in defined and len(defined) > 20
    assert defined <= evaluated.keys(), sorted(defined - evaluated.keys())
    assert all(evaluated[name] for name in defined), sorted(name for name in defined if not evaluated[name])
