"""Benchmark: `/api/v4/search/` ranking over a synthetic world (5,000 packages + 700 grids by default).

    uv run python -m benchmarks.search --packages 5000 --grids 700

Builds `SearchIndex` from search rows shaped like `published_api.search_rows` (names and words like
the site's: django-/dj-/drf- prefixes, descriptions of a dozen words, participants' logins), then
times uncached queries (the cache is bypassed: each query once, on the index's `_search`) of
several kinds: full titles, words, short prefixes, typos, multi-word, descriptions-only words,
logins, misses and a 10 kB query. Baseline in the same run: the substring scan `pulse serve` used
before (every row's title, slug and description, sorted by weight). Wall times on a shared machine
are noisy, so each query's CPU time (`thread_time`, blind to preemption) is reported too. The last
line printed is one JSON object (build seconds, p50/p99/max per kind in milliseconds, wall and CPU,
and the baseline's).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from assets.exports.search import SearchIndex

_A = (
    "admin auth rest ajax cache celery cms comments config cors crispy csv debug dynamic easy email extra "
    "fast filter forms geo graph guardian haystack health history i18n import json jwt lazy ldap live log "
    "mail markdown media model money mptt multi nested notify oauth object orm page paginator perm phone "
    "polymorphic post push query queue quick rate redis reversion rich safe sass search secure select seo "
    "session shop simple site sitemap slug smart social sortable static storage stripe super tag task "
    "tenant test text theme thumbnail timezone token tree upload user uuid version video view vote watch "
    "web widget wiki workflow yaml")
_B = (
    "tools utils fields forms views toolbar framework backend helpers api kit manager middleware models "
    "panel plus widgets tags extensions registry storage builder client filters mixins loader bridge suite "
    "engine layer core compat hub box lab pack flow pages blocks editor importer exporter tracker logger "
    "monitor scheduler router cache sync pipeline signals generator permissions admin emails")
WORDS_A, WORDS_B = _A.split(), _B.split()
PREFIXES = ("django-", "django-", "django-", "dj-", "", "drf-", "wagtail-")
_PROSE = ("a reusable django app for the admin with support for templates and caching of querysets "
         "that makes it easy to manage users permissions and static files in your project quickly")
PROSE = _PROSE.split()
CATEGORIES = ("App", "Framework", "Project", "Other")


def synth_rows(packages: int, grids: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    for i in range(packages):
        slug = f"{rng.choice(PREFIXES)}{rng.choice(WORDS_A)}-{rng.choice(WORDS_B)}"
        if slug in seen:
            slug = f"{slug}-{i}"
        seen.add(slug)
        title = slug if rng.random() < 0.6 else slug.replace("-", " ").title()
        words = rng.sample(PROSE, 12) + rng.sample(WORDS_A, 2) + rng.sample(WORDS_B, 1)
        rng.shuffle(words)
        rows.append(_row("package", title, slug, " ".join(words).capitalize() + ".", rng.choice(CATEGORIES),
                         ",".join(f"{rng.choice(WORDS_A)}{rng.randrange(99)}" for _ in range(rng.randrange(1, 15))),
                         rng.randrange(0, 101)))
    for g in range(grids):
        word = rng.choice(WORDS_A)
        slug = word if word not in seen else f"{word}-{g}"
        seen.add(slug)
        rows.append(_row("grid", slug.replace("-", " ").title(), slug, f"Packages for {word} in Django projects.",
                         "", "", rng.randrange(0, 84)))
    return rows


def _row(kind: str, title: str, slug: str, description: str, category: str, participants: str,
         weight: int) -> dict:
    base = "packages/p" if kind == "package" else "grids/g"
    return {"description": description, "title": title, "title_no_prefix": title, "slug_no_prefix": slug,
            "clean_title": title, "absolute_url": f"/{base}/{slug}/", "created": "2020-01-01T00:00:00Z",
            "modified": "2020-01-01T00:00:00Z", "weight": weight, "item_type": kind, "slug": slug,
            "category": category, "repo_watchers": 0, "repo_forks": 0, "pypi_downloads": 0, "score": 0,
            "usage": 0, "participants": participants, "last_committed": None, "last_released": None}


def queries(rows: list[dict], seed: int = 11) -> dict[str, list[str]]:
    rng = random.Random(seed)
    slugs = [r["slug"] for r in rows if r["item_type"] == "package"]

    def typo(s: str) -> str:
        i = rng.randrange(len(s) - 1)
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]

    return {
        "title": [rng.choice(rows)["title"] for _ in range(200)],
        "word": [rng.choice(WORDS_A + WORDS_B) for _ in range(200)],
        "prefix": [rng.choice(WORDS_A)[:rng.randrange(3, 6)] for _ in range(200)],
        "typo": [typo(rng.choice(slugs)) for _ in range(200)],
        "multi": [f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)}" for _ in range(200)],
        "common": ["django", "admin", "the", "app", "a"] * 20,
        "login": [f"{rng.choice(WORDS_A)}{rng.randrange(99)}" for _ in range(200)],
        "miss": ["zzqx" + str(i) for i in range(100)],
        "huge": ["django " * 1500 + str(i) for i in range(20)],
    }


def substring_search(rows: list[dict], q: str) -> list[dict]:
    """The placeholder search before this one: a scan of every row per query."""
    q = q.strip().lower()
    if not q:
        return []
    hits = [row for row in rows if q in row["title"].lower() or q in row["slug"] or q in row["description"].lower()]
    hits.sort(key=lambda row: (-row["weight"], row["slug"]))
    return hits[:20]


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(times[max(0, int(len(times) * .99) - 1)], 3),
            "max_ms": round(times[-1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=5000)
    parser.add_argument("--grids", type=int, default=700)
    args = parser.parse_args()
    rows = synth_rows(args.packages, args.grids)
    start = time.perf_counter()
    index = SearchIndex(rows)
    build = time.perf_counter() - start
    out: dict[str, object] = {"packages": args.packages, "grids": args.grids, "build_seconds": round(build, 3)}
    every, every_cpu, baseline = [], [], []
    for kind, qs in queries(rows).items():
        times, cpu = [], []
        for q in qs:
            t, c = time.perf_counter(), time.thread_time()
            index._search(q)
            cpu.append((time.thread_time() - c) * 1000)
            times.append((time.perf_counter() - t) * 1000)
        every += times
        every_cpu += cpu
        out[kind] = {**_percentiles(times), "cpu": _percentiles(cpu)}
    out["all"] = {"queries": len(every), **_percentiles(every), "cpu": _percentiles(every_cpu)}
    for qs in queries(rows).values():
        for q in qs[:20]:
            t = time.perf_counter()
            substring_search(rows, q)
            baseline.append((time.perf_counter() - t) * 1000)
    out["baseline_substring_scan"] = _percentiles(baseline)
    t = time.perf_counter()
    for _ in range(1000):
        index.search("django rest")
    out["cached_us"] = round((time.perf_counter() - t) * 1000, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
