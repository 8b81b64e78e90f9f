"""What the source modules' readers share: the bodies they are handed, and the row-by-row reading
of small hosts.

A source declares how its stored bodies are decoded (`Source.shapes`, `structures`, `finish`,
`row_endpoints`); the parse stage decodes every body in one DuckDB pass and hands each source a
`Bodies`: the endpoints it decodes column-wise as `docs`, those it reads itself as `rows`. The
high-volume sources read decoded structs with polars expressions; the small repository hosts
(small volumes, looser shapes) read JSON row by row (`read_rows`). A body of the wrong shape becomes
a `malformed` reason keyed by request, never an exception: one odd upstream answer must not stop a
refresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import orjson
import polars as pl

from pipelines.sources.facts import COMMIT_FACTS, MALFORMED_FACTS, REPO_FACTS, SourceFacts

JsonShape = Literal["object", "list"]  # the JSON type a body must have (else a `malformed` row)


@dataclass(frozen=True)
class Bodies:
    """One source's newest good bodies, decoded as it declared. `docs[endpoint]`: request_key,
    subject, good_fetched_at and `doc` (the `structures` decoding) of every well-formed body;
    `rows`: request_key, endpoint, subject, good_fetched_at and the JSON text `body` of the
    `row_endpoints`' well-formed bodies."""

    docs: Mapping[str, pl.DataFrame]
    rows: pl.DataFrame


def structure(dtype: pl.DataType) -> str:
    """A polars dtype -> the DuckDB `json_transform` structure that decodes a body into it."""

    def walk(dtype: pl.DataType) -> object:
        if isinstance(dtype, pl.Struct):
            return {f.name: walk(f.dtype) for f in dtype.fields}
        if isinstance(dtype, pl.List):
            return [walk(dtype.inner)]
        return {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}[dtype.base_type()]

    return orjson.dumps(walk(dtype)).decode()


def malformed(frame: pl.DataFrame, reason: str) -> pl.DataFrame:
    """The rows of `frame` as malformed-body reasons (they become `core.crawl_errors` rows)."""
    return frame.select("request_key", pl.lit(reason).alias("reason"))


# Accounts that act as bots without a "[bot]" suffix or a GitHub "Bot" type (compared lower-case).
KNOWN_BOTS = frozenset(
    {
        "dependabot",
        "dependabot-preview",
        "renovate",
        "renovate-bot",
        "renovatebot",
        "pre-commit-ci",
        "pyup-bot",
        "pyup.io bot",
        "greenkeeper",
        "greenkeeperio-bot",
        "snyk-bot",
        "codecov-io",
        "codecov-commenter",
        "allcontributors",
        "imgbot",
        "deepsource-autofix",
        "github-actions",
        "mergify",
        "transifex-integration",
        "weblate",
        "sourcery-ai",
        "restyled-io",
        "whitesource-bolt-for-github",
    }
)


def is_bot_expr(login: pl.Expr, kind: pl.Expr) -> pl.Expr:
    """Bots are kept (the export shows them) but flagged, so rankings can leave them out."""
    lower = login.str.to_lowercase()
    return (
        lower.str.ends_with("[bot]")
        | (kind.fill_null("") == "Bot")
        | lower.is_in(list(KNOWN_BOTS))
        | lower.str.ends_with("-bot")
    ).fill_null(False)


# --- row by row (small hosts) ---------------------------------------------------------------------


def text(value: object) -> str | None:
    """A JSON value if it is a string (an ISO stamp, a name), else None."""
    return value if isinstance(value, str) else None


def first_item(doc: object) -> dict:
    """The first element of a list (or of a page object's `values`), or {}."""
    if isinstance(doc, dict):
        doc = doc.get("values")
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return doc[0]
    return {}


def _loads(body: str) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


RepoReader = Callable[[dict], dict]  # JSON object -> repository facts (what the host lacks stays null)
# (the JSON type the body must have, body -> its newest commit's date)
LastCommitReader = tuple[type | tuple[type, ...], Callable[..., str | None]]


def read_rows(rows: pl.DataFrame, repos: Mapping[str, RepoReader],
              last_commits: Mapping[str, LastCommitReader]) -> SourceFacts:
    """A small host's bodies (`Bodies.rows`) -> repository facts, commit facts, malformed reasons,
    each endpoint read by its reader in `repos` or `last_commits`."""
    repo_rows: list[dict] = []
    commits: list[dict] = []
    bad: list[str] = []
    for row in rows.iter_rows(named=True):
        endpoint = row["endpoint"]
        if endpoint in last_commits:
            shape, last_commit_date = last_commits[endpoint]
            doc = _loads(row["body"])
            if not isinstance(doc, shape):
                bad.append(row["request_key"])
                continue
            commits.append({"subject": row["subject"], "last_commit_at": last_commit_date(doc)})
        elif endpoint in repos:
            doc = _loads(row["body"])
            if not isinstance(doc, dict):
                bad.append(row["request_key"])
                continue
            repo_rows.append(
                {
                    **dict.fromkeys(REPO_FACTS),
                    **repos[endpoint](doc),
                    "subject": row["subject"],
                    "good_fetched_at": row["good_fetched_at"],
                }
            )
    try:
        repo_frame = pl.DataFrame(repo_rows, schema=REPO_FACTS, strict=False)
    except Exception:
        # one record polars cannot type must not cost the others their facts
        repo_frame = pl.DataFrame(schema=REPO_FACTS)
        for rec in repo_rows:
            try:
                repo_frame = repo_frame.vstack(pl.DataFrame([rec], schema=REPO_FACTS, strict=False))
            except Exception:
                bad.append(rec["subject"])
    return SourceFacts(
        repos=repo_frame,
        commits=pl.DataFrame(commits, schema=COMMIT_FACTS, strict=False),
        malformed=pl.DataFrame({"request_key": bad, "reason": ["body is not the expected JSON"] * len(bad)},
                               schema=MALFORMED_FACTS),
    )
