"""Readers of the published snapshot: `pulse serve`, and the notebooks executed for real."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import nbformat
import orjson
import pytest
from nbclient import NotebookClient

from tests.e2e.conftest import serving

pytestmark = pytest.mark.slow  # real `pulse` refreshes in subprocesses, against the simulator

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))



@pytest.fixture
def served(refreshed):
    with serving(refreshed.env) as base:
        yield base


def test_serve_matches_the_static_export(served, refreshed):
    root = httpx.get(f"{served}/api/v4/").json()
    assert list(root) == ["packages", "search", "grids", "categories"]
    listing = httpx.get(f"{served}/api/v4/packages/?limit=5&offset=5").json()
    assert listing["previous"].endswith("/api/v4/packages/?limit=5")
    assert listing["next"].endswith("/api/v4/packages/?limit=5&offset=10")
    first = listing["results"][0]
    exported = orjson.loads((refreshed.home / "export/api/v4/packages" / str(first["id"]) / "index.json").read_bytes())
    assert first == exported
    by_slug = httpx.get(f"{served}/api/v4/packages/{first['slug']}/").json()
    assert by_slug == exported
    missing = httpx.get(f"{served}/api/v4/packages/999999/")
    assert missing.status_code == 404 and missing.json() == {"detail": "No Package matches the given query."}
    assert httpx.get(f"{served}/api/v4/categories/apps/").status_code == 404  # categories: id only
    for name in ("score", "health"):  # the per-package documents: the tree's bytes, or 404 for both
        document = refreshed.home / "export/api/v4/packages" / str(first["id"]) / name / "index.json"
        answer = httpx.get(f"{served}/api/v4/packages/{first['slug']}/{name}/")
        if document.exists():
            assert answer.status_code == 200 and answer.content == document.read_bytes()
        else:
            assert answer.status_code == 404
    hits = httpx.get(f"{served}/api/v4/search/", params={"q": first["slug"][:6]}).json()
    assert isinstance(hits, list) and 0 < len(hits) <= 20
    assert {"item_type", "absolute_url", "slug", "repo_watchers", "participants"} <= set(hits[0])
    assert httpx.get(f"{served}/api/v4/search/", params={"q": ""}).json() == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_the_published_snapshot(path, refreshed, monkeypatch):
    monkeypatch.setenv("PULSE_HOME", str(refreshed.home))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert os.environ["PULSE_HOME"] == str(refreshed.home)
