"""Adds the issue 9 score tables (health room, health marts, core download/usage columns) to a
published DuckDB built from tests/fixtures/sample.py, with a few hand-written rows, so the exports'
readers can be tested before (and independently of) the branches that compute them.

Names and types follow the issue 9 contract (PLAN9.md "Tables and columns").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

DOCS = "https://docs.djangopackages.org/en/latest/rules/#searchv3.rules."
COMPUTED_AT = datetime(2026, 11, 28, tzinfo=UTC)
COMPONENT_MAX = {"activity": 25.0, "releases": 20.0, "popularity": 20.0, "community": 15.0, "currency": 10.0,
                 "security": 10.0}

# package_id: (score, weight, last_released (the site's), health, cap, cap_reason, pypi_downloads, usage)
PACKAGES = {
    1: (380, 93, datetime(2026, 6, 1, 16, 30, tzinfo=UTC), 71.5, None, None, 15645, 3),
    2: (380, 62, None, 48.0, None, None, None, 0),
    3: (-12, 37, datetime(2021, 3, 4, 5, 6, 7, 500000, tzinfo=UTC), 9.0, 10.0,
        "PyPI quarantined the project", 900, 0),
    4: (20, 50, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), 22.5, 25.0,
        'classifiers say "Development Status :: 7 - Inactive"', 1200, 25),
    5: (4, 31, None, 48.0, None, None, None, 0),
    6: (70, 44, datetime(2025, 12, 1, tzinfo=UTC), 25.0, 25.0, "the repository is archived", 40, 1),
    7: (0, 25, None, 3.0, 40.0, "no human commit and no release for 730 days, or none known", None, 0),
    8: (2, 31, None, 30.5, None, None, None, 0),
}
GRID_WEIGHTS = {10: 46, 11: 62}
# marts.package_health trend: package_id -> (change_30d, change_90d)
TRENDS = {1: (2.5, -1.0), 3: (None, None)}


def breakdown(total: int, downloads: int | None) -> str:
    """A weight breakdown in the site's shape (compact JSON, as health.package_scores stores it)."""
    dl = downloads or 0
    entries = [
        ("Deprecated Rule", "Checks if the package is deprecated.", 20, 20, "Package is not deprecated."),
        ("Downloads Rule", "Scores by PyPI downloads.", min(dl // 1000, 20), 20,
         f"Package has {dl} PyPi downloads." if dl else "No PyPi downloads data for the package."),
        ("Activity Rules", "Scores based on the package's activity.", 10, 40,
         "Package was updated less than 6 months ago. Last release is more than a year old."),
    ]
    message = " ".join(e[4] for e in entries)
    return orjson.dumps({
        "total_score": total, "message": message,
        "breakdown": [{"rule": r, "description": d, "score": s, "max_score": m, "message": msg,
                       "documentation_url": DOCS + r.replace(" ", "")} for r, d, s, m, msg in entries],
    }).decode()


def _components(health: float) -> dict[str, float]:
    # split the uncapped score over the components, each within its maximum
    left, parts = health, {}
    for name, top in COMPONENT_MAX.items():
        parts[name] = round(min(left, top), 1)
        left = round(left - parts[name], 1)
    return parts


def add_health_tables(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS health")
        component_cols = ", ".join(f"{c} DOUBLE, {c}_max DOUBLE" for c in COMPONENT_MAX)
        con.execute(f"""
            CREATE OR REPLACE TABLE health.package_scores (
                package_id BIGINT NOT NULL, score INTEGER, weight INTEGER, weight_breakdown VARCHAR,
                last_released TIMESTAMPTZ, health_score DOUBLE, health_uncapped DOUBLE, {component_cols},
                cap DOUBLE, cap_reason VARCHAR, explanation VARCHAR, health_version VARCHAR,
                computed_at TIMESTAMPTZ)""")
        con.execute("CREATE OR REPLACE TABLE health.grid_scores (grid_id BIGINT NOT NULL, weight INTEGER)")
        for package_id, (score, weight, released, health, cap, reason, downloads, _usage) in PACKAGES.items():
            uncapped = health if cap is None else min(health + 30.0, 100.0)
            parts = _components(uncapped)
            lines = ([f"capped at {cap:g}: {reason}"] if cap is not None else []) + [
                f"{name} {points}/{COMPONENT_MAX[name]:g}: why {name} of package {package_id}"
                for name, points in parts.items()]
            values = [package_id, score, weight, breakdown(weight, downloads), released,
                      health, uncapped,
                      *(v for name in COMPONENT_MAX for v in (parts[name], COMPONENT_MAX[name])),
                      cap, reason, orjson.dumps(lines).decode(), "1+eol.2026-08", COMPUTED_AT]
            con.execute(f"INSERT INTO health.package_scores VALUES ({', '.join('?' * len(values))})", values)
        con.executemany("INSERT INTO health.grid_scores VALUES (?, ?)", list(GRID_WEIGHTS.items()))

        con.execute("ALTER TABLE core.packages ADD COLUMN IF NOT EXISTS pypi_downloads BIGINT")
        con.execute("ALTER TABLE core.packages ADD COLUMN IF NOT EXISTS usage BIGINT DEFAULT 0")
        for package_id, row in PACKAGES.items():
            con.execute("UPDATE core.packages SET pypi_downloads = ?, usage = ? WHERE id = ?",
                        [row[6], row[7], package_id])

        con.execute("DROP VIEW IF EXISTS marts.package_health")  # the real view: replaced by fixed rows
        con.execute("""
            CREATE TABLE marts.package_health AS
            SELECT s.package_id, p.slug, p.title, s.health_score, s.activity, s.releases, s.popularity,
                   s.community, s.currency, s.security, s.cap_reason, s.explanation, s.health_version,
                   CAST(NULL AS DOUBLE) AS change_30d, CAST(NULL AS DOUBLE) AS change_90d
            FROM health.package_scores s JOIN core.packages p ON p.id = s.package_id""")
        for package_id, (d30, d90) in TRENDS.items():
            con.execute("UPDATE marts.package_health SET change_30d = ?, change_90d = ? WHERE package_id = ?",
                        [d30, d90, package_id])
        con.execute("DROP VIEW IF EXISTS marts.grid_package_health")  # the real view: replaced by fixed rows
        con.execute("""
            CREATE TABLE marts.grid_package_health AS
            WITH m AS (SELECT gp.grid_id, gp.package_id, s.health_score FROM core.grid_packages gp
                       JOIN health.package_scores s ON s.package_id = gp.package_id)
            SELECT grid_id, package_id,
                   CAST(rank() OVER (PARTITION BY grid_id ORDER BY health_score DESC) AS INTEGER) AS rank,
                   CASE WHEN count(*) OVER (PARTITION BY grid_id) > 1
                        THEN round((rank() OVER (PARTITION BY grid_id ORDER BY health_score) - 1) * 100.0
                                   / (count(*) OVER (PARTITION BY grid_id) - 1), 1)
                        ELSE 100.0 END AS percentile
            FROM m""")
        con.execute("DROP VIEW IF EXISTS marts.grid_health")  # the real view: replaced by fixed rows
        con.execute("""
            CREATE TABLE marts.grid_health AS
            SELECT g.id AS grid_id, g.slug, count(s.package_id) AS packages,
                   median(s.health_score) AS median_health, min(s.health_score) AS min_health,
                   max(s.health_score) AS max_health, arg_max(s.package_id, s.health_score) AS top_package_id
            FROM core.grids g LEFT JOIN core.grid_packages gp ON gp.grid_id = g.id
            LEFT JOIN health.package_scores s ON s.package_id = gp.package_id
            GROUP BY ALL""")
        con.execute("CHECKPOINT")
    finally:
        con.close()
