"""Record `SITE_ORDER` (tests/exports/test_search.py) from djangopackages' own query on real Postgres.

Not a test: a tool for when the rules change. It loads `WORLD` into a table shaped like
`searchv3.SearchV3` (the generated weighted `search_vector` of searchv3/models.py) and runs, for each
query, the SQL Django generates from `SearchV3QuerySet.search` with the site's defaults
(searchv3/search.py), then prints the hits' slugs in order, ready to paste:

    PSQL="psql -h /tmp/pg -p 5432 -d postgres" uv run python -m tests.exports.search_site_orders q1 q2 ...

It needs a PostgreSQL server with the pg_trgm extension (`CREATE EXTENSION pg_trgm` is run). Titles
tie-break as `lower(title), title` in the "C" collation, which orders like the en_US-style key
SearchIndex uses for the titles of WORLD.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from tests.exports.test_search import WORLD

_PREFIX_RE = re.compile(r"\A[A-Za-z0-9_-]+\Z")


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _psql(sql: str) -> str:
    command = [*shlex.split(os.environ.get("PSQL", "psql -d postgres")), "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1"]
    done = subprocess.run(command, input=sql, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"psql failed: {done.stderr.strip()}")
    return done.stdout


def load() -> None:
    values = ",\n".join(
        f"({i}, {', '.join(_literal(v) for v in entry[1:6])}, {int(entry[6])})" for i, entry in enumerate(WORLD))
    _psql(f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
DROP TABLE IF EXISTS searchv3_record;
CREATE TABLE searchv3_record (id int, title varchar(100), slug varchar(50), description text,
  category varchar(50), participants text, weight int,
  search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, COALESCE(slug, '')), 'B') ||
    setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'C') ||
    setweight(to_tsvector('english'::regconfig, COALESCE(category, '')), 'D') ||
    setweight(to_tsvector('english'::regconfig, COALESCE(participants, '')), 'D')) STORED);
INSERT INTO searchv3_record (id, title, slug, description, category, participants, weight) VALUES {values};
""")


def site_order(q: str) -> list[str]:
    """`SearchV3.objects.search(q)[:20]` as SQL (searchv3/search.py 111-187, defaults)."""
    q = q.strip()
    if not q:
        return []
    query = f"websearch_to_tsquery('english'::regconfig, {_literal(q)})"
    if 3 <= len(q) < 6 and _PREFIX_RE.match(q):
        query = f"({query} || to_tsquery('english'::regconfig, {_literal(q + ':*')}))"
    lower = _literal(q.lower())
    if len(q) >= 3:
        similarity = f"GREATEST(similarity(title, {lower}), similarity(slug, {lower}))"
        where = (f"(search_vector @@ {query} OR ((title % {lower} OR slug % {lower}) "
                 f"AND {similarity} >= 0.2))")
    else:
        similarity, where = "0.0::float", f"search_vector @@ {query}"
    out = _psql(f"""SET client_min_messages = error;
SELECT slug FROM searchv3_record WHERE {where}
ORDER BY ts_rank(search_vector, {query}) + weight::float * 0.02 DESC, {similarity} DESC,
  lower(title) COLLATE "C", title COLLATE "C" LIMIT 20;""")
    return [line for line in out.splitlines() if line and line != "SET"]


if __name__ == "__main__":
    load()
    for query in sys.argv[1:]:
        print(f"    ({query!r}, {site_order(query)!r}),")
