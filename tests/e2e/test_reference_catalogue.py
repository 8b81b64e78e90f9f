"""The real 2022 djangopackages catalogue (4,896 rows, dead and malformed URLs included) through the
whole pipeline: every row ends up in the warehouse and the export, broken ones with a reason, and the
run still exits 0. Upstreams are the simulator, which knows none of these repositories."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from simulator.server import start_in_thread
from tests.e2e.conftest import pulse_env, run_pulse

pytestmark = pytest.mark.slow  # a real `pulse refresh` of the reference catalogue

CSV = Path(__file__).resolve().parents[3] / "shared" / "reference" / "djangopackages_catalogue_2022-05.csv"


@pytest.mark.skipif(not CSV.exists(), reason=f"reference file absent: {CSV}")
def test_real_catalogue_survives_a_refresh(tmp_path):
    with start_in_thread(packages=50, seed=3) as sim:
        env = pulse_env(sim, tmp_path / "home", PULSE_CATALOGUE=str(CSV))
        result = run_pulse("refresh", env=env, timeout=600)
        requests = sim.requests()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "packages with errors recorded" in result.stderr
    # every request went to an API route of the configured hosts, never to a catalogue URL as given
    unknown = [r for r in requests if r["route"] == "unknown"]
    assert requests and not unknown, unknown[:3]
    con = duckdb.connect(str(tmp_path / "home" / "published.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM core.packages").fetchone()[0] == 4896
        problems = dict(con.execute(
            "SELECT split_part(repo_url_problem, ':', 1), count(*) FROM catalogue.packages "
            "WHERE repo_url_problem IS NOT NULL GROUP BY ALL").fetchall())
        assert problems.get("empty", 0) > 600
        kinds = dict(con.execute("SELECT kind, count(*) FROM core.crawl_errors GROUP BY ALL").fetchall())
        assert kinds.get("gone", 0) + kinds.get("not_found", 0) > 1000, kinds
    finally:
        con.close()
    exported = list((tmp_path / "home" / "export/api/v4/packages").glob("*/index.json"))
    assert len(exported) == 4896
