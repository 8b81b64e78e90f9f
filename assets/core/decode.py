"""What DuckDB's JSON reader extracts from each body, and the one SQL pass that does it.

Bodies are decoded in DuckDB (yyjson, multi-threaded, ~3x polars' `json_decode` on these shapes)
against explicit structures: only the fields the core tables need are materialised, and a body that
is not JSON or not the expected shape is reported in `problem` instead of failing the whole batch.
GitLab, Bitbucket and Codeberg bodies are only validated here (`other_body`); their volumes are
small and their shapes vary, so `bodies.other_host_facts` reads them row by row.
"""

from __future__ import annotations

import orjson
import polars as pl

_S, _I, _B = pl.String(), pl.Int64(), pl.Boolean()

GITHUB_REST_DTYPE = pl.Struct(
    {
        "full_name": _S,
        "stargazers_count": _I,
        "forks_count": _I,
        "subscribers_count": _I,
        "open_issues_count": _I,
        "description": _S,
        "homepage": _S,
        "archived": _B,
        "fork": _B,
        "default_branch": _S,
        "pushed_at": _S,
        "license": pl.Struct({"spdx_id": _S}),
        "topics": pl.List(_S),
    }
)

GITHUB_GRAPHQL_DTYPE = pl.Struct(
    {
        "nameWithOwner": _S,
        "stargazerCount": _I,
        "forkCount": _I,
        "watchers": pl.Struct({"totalCount": _I}),
        "issues": pl.Struct({"totalCount": _I}),
        "description": _S,
        "homepageUrl": _S,
        "isArchived": _B,
        "isFork": _B,
        "pushedAt": _S,
        "licenseInfo": pl.Struct({"spdxId": _S}),
        "repositoryTopics": pl.Struct({"nodes": pl.List(pl.Struct({"topic": pl.Struct({"name": _S})}))}),
        "defaultBranchRef": pl.Struct({"name": _S, "target": pl.Struct({"committedDate": _S})}),
        "latestRelease": pl.Struct({"tagName": _S}),
    }
)

PARTICIPATION_DTYPE = pl.Struct({"all": pl.List(_I)})
CONTRIBUTORS_DTYPE = pl.List(pl.Struct({"login": _S, "type": _S, "contributions": _I}))
COMMITS_DTYPE = pl.List(pl.Struct({"commit": pl.Struct({"committer": pl.Struct({"date": _S})})}))

# written in DuckDB terms: `releases` is keyed by version and `project_urls` by label, which only a
# MAP can express (a polars dtype cannot)
PYPI_STRUCTURE = (
    '{"info": {"version": "VARCHAR", "docs_url": "VARCHAR", "project_urls": "MAP(VARCHAR, VARCHAR)", '
    '"requires_python": "VARCHAR", "classifiers": ["VARCHAR"]}, '
    '"releases": "MAP(VARCHAR, STRUCT(upload_time_iso_8601 VARCHAR, yanked BOOLEAN, requires_python VARCHAR)[])"}'
)
# PEP 691 Simple JSON: only the name (the shape check) and the PEP 792 project status are read
PYPI_SIMPLE_DTYPE = pl.Struct({"name": _S, "project-status": pl.Struct({"status": _S, "reason": _S})})
OBJECT_ENDPOINTS = ("repo", "graphql_repo", "participation", "pypi_json", "pypi_simple", "gitlab_project",
                    "bitbucket_repo", "codeberg_repo")
LIST_ENDPOINTS = ("contributors", "commits", "gitlab_commits", "codeberg_commits")
OTHER_SOURCES = ("gitlab", "bitbucket", "codeberg")  # decoded row by row (`bodies.other_host_facts`)


def _structure(dtype: pl.DataType) -> object:
    """A polars dtype -> DuckDB `json_transform` structure."""
    if isinstance(dtype, pl.Struct):
        return {f.name: _structure(f.dtype) for f in dtype.fields}
    if isinstance(dtype, pl.List):
        return [_structure(dtype.inner)]
    return {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}[dtype.base_type()]


def _json(dtype: pl.DataType) -> str:
    return orjson.dumps(_structure(dtype)).decode()


# endpoint -> the structure its body is decoded into, as column `d_<endpoint>` (the decoded frame
# carries one such column per endpoint; `endpoint_docs` picks one out)
STRUCTURES: dict[str, str] = {
    "repo": _json(GITHUB_REST_DTYPE),
    "graphql_repo": _json(GITHUB_GRAPHQL_DTYPE),
    "participation": _json(PARTICIPATION_DTYPE),
    "contributors": _json(CONTRIBUTORS_DTYPE),
    "commits": _json(COMMITS_DTYPE),
    "pypi_json": PYPI_STRUCTURE,
    "pypi_simple": _json(PYPI_SIMPLE_DTYPE),
}
PYPI_ENDPOINTS = ("pypi_json", "pypi_simple")


def _transform(endpoint: str, structure: str) -> str:
    # TRY: a body that is not JSON decodes to NULL (and is then reported by `problem`) instead of
    # failing the whole query; parsing once here is what makes a separate json_valid pass unneeded
    quoted = structure.replace("'", "''")
    return (
        f"CASE WHEN source = '{'pypi' if endpoint in PYPI_ENDPOINTS else 'github'}' "
        f"AND endpoint = '{endpoint}' THEN TRY(json_transform(body, '{quoted}')) END AS d_{endpoint}"
    )


def decode_sql(src: str) -> str:
    """One pass over the newest good bodies in `src` (request_key, source, endpoint, subject,
    good_fetched_at, good_status, body): whatever `src` is (a registered frame or a streamed Parquet
    scan), the bodies are validated and decoded the same way, so both parse paths agree."""
    objects = ", ".join(f"'{e}'" for e in OBJECT_ENDPOINTS)
    lists = ", ".join(f"'{e}'" for e in LIST_ENDPOINTS)
    columns = [_transform(endpoint, structure) for endpoint, structure in STRUCTURES.items()]
    decoded = " OR ".join(f"d_{endpoint} IS NOT NULL" for endpoint in STRUCTURES)
    return f"""
    SELECT * REPLACE (
        CASE WHEN d_pypi_json IS NOT NULL THEN struct_pack(
            info := CASE WHEN d_pypi_json.info IS NOT NULL THEN struct_pack(
                version := d_pypi_json.info.version,
                docs_url := d_pypi_json.info.docs_url,
                project_urls := map_entries(d_pypi_json.info.project_urls),
                requires_python := d_pypi_json.info.requires_python,
                classifiers := d_pypi_json.info.classifiers
            ) END,
            releases := map_entries(d_pypi_json.releases)
        ) END AS d_pypi_json
    ) FROM (
    WITH t AS (
        SELECT request_key, source, endpoint, subject, good_fetched_at, good_status, body,
               left(ltrim(body), 1) AS head,
               {", ".join(columns)}
        FROM ({src})
    ), v AS (
        -- a decoded body is valid JSON; only the others are parsed again to tell why (CASE evaluates
        -- json_valid for those rows only)
        SELECT *, CASE WHEN {decoded} THEN TRUE ELSE coalesce(json_valid(body), FALSE) END AS valid FROM t
    )
    SELECT request_key, source, endpoint, subject, good_fetched_at, good_status,
           CASE WHEN NOT valid THEN 'body is not valid JSON'
                WHEN endpoint IN ({objects}) AND head <> '{{' THEN 'body is not a JSON object'
                WHEN endpoint IN ({lists}) AND head <> '[' THEN 'body is not a JSON list'
           END AS problem,
           {", ".join(f"d_{endpoint}" for endpoint in STRUCTURES)},
           CASE WHEN valid AND source IN ({", ".join(f"'{s}'" for s in OTHER_SOURCES)}) THEN body END AS other_body
    FROM v
    )
    """


def endpoint_docs(decoded: pl.DataFrame, source: str, endpoint: str) -> pl.DataFrame:
    """One endpoint's well-formed decoded bodies as `doc` (request_key, subject, good_fetched_at, doc)."""
    column = f"d_{endpoint}"
    mask = (pl.col("source") == source) & (pl.col("endpoint") == endpoint) & pl.col("problem").is_null()
    # select before filtering: the decoded frame carries every endpoint's (nested) column
    return decoded.select(
        "request_key", "subject", "good_fetched_at", pl.col(column).alias("doc"), mask.alias("_keep")
    ).filter("_keep").drop("_keep")
