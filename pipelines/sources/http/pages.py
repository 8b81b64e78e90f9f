"""Pagination: following `next` links and merging JSON list pages into one archived answer.

The archive keeps one body per request key, so a paginated endpoint (contributors, a year of
commits) is stored as all its pages merged, and a failed later page fails the whole key rather than
leaving a silently truncated list behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from pipelines.sources.http.fetched import Fetched

if TYPE_CHECKING:
    from pipelines.sources.http.upstream import Upstream


def next_link(link_header: str | None) -> str | None:
    """The `rel="next"` target of an RFC 8288 Link header, by httpx's own parser.

    `Upstream` reads it from the response (`httpx.Response.links`, kept as `Fetched.next_url`);
    this is for a Link header held as text. httpx keys links by their `rel` value, which is all
    the upstreams here send (one relation per link).
    """
    if not link_header:
        return None
    links = httpx.Response(200, headers={"link": link_header}).links
    return (links.get("next") or {}).get("url")


async def merge_pages(
    upstream: Upstream,
    first: Fetched,
    *,
    what: str,
    max_pages: int,
    more: Callable[[list[Any]], bool] | None = None,
    fallback: Callable[[Fetched, int], str | None] | None = None,
    headers: Mapping[str, str] | None = None,
    overflow_error: str | None = None,
) -> Fetched:
    """`first` with every following page merged into its body (`x-pulse-pages` says how many).

    Pages are followed while `more(last page)` holds (always when None), by the Link header or else
    by `fallback(last page, pages so far)`. Past `max_pages` the pages so far are kept, unless
    `overflow_error` is given: then the key fails as `malformed` with that message. A first page
    that is not a good JSON list is returned as it is (`malformed: <what> is not a list`).
    """
    if not first.ok:
        return first
    if not isinstance(first.data, list):
        first.error_kind, first.error = "malformed", f"{what} is not a list"
        return first
    merged: list[Any] = list(first.data)
    pages = 1
    current = first
    while more is None or more(current.data):
        link = current.next_url or next_link(current.headers.get("link"))
        if link is None and fallback is not None:
            link = fallback(current, pages)
        if link is None:
            break
        pages += 1
        if pages > max_pages:
            if overflow_error is None:
                break  # enough for 52 weeks of activity; keep what we have
            first.error_kind, first.error = "malformed", overflow_error
            return first
        current = await upstream.get(link, headers=headers)
        first.attempts += current.attempts
        if not current.ok or not isinstance(current.data, list):
            first.status = current.status
            first.error_kind = current.error_kind or "malformed"
            first.error = f"page {pages}: {current.error or 'not a list'}"
            return first
        merged.extend(current.data)
    if pages > 1:
        first.data = merged
        first.text = orjson.dumps(merged).decode()
    first.headers.pop("link", None)
    first.headers["x-pulse-pages"] = str(pages)
    return first
