"""Which hosts the crawler may contact: one allow-list check, one same-host policy, one User-Agent.

Catalogue entries are user input, and a crafted repository URL, `next` link or redirect must not
turn the crawler (and its tokens) against another host. So a URL is only requested when it is
http(s), carries no credentials and names a configured API host (`check_url`), and a client only
follows redirects and pages to the scheme and host:port of its own base URL (`same_host`). Both the
async crawl (`Upstream`) and the catalogue reader (`pipelines.sources.djangopackages`) use these.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

USER_AGENT = "package-pulse/0.1 (+https://github.com/djangopackages)"


class HostNotAllowed(ValueError):
    """A URL points outside the configured API hosts (or its client's own host); it is never requested."""


def netloc(url: str) -> str:
    """host:port with the scheme's default port filled in, lower-cased."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def check_url(url: str, allowed: Collection[str]) -> str:
    """Return `url` when its scheme is http(s), it has no credentials and its host:port is allowed."""
    try:
        parts = urlsplit(url)
        location = netloc(url)
    except ValueError as exc:  # e.g. a port that is not a number
        raise HostNotAllowed(f"refusing a malformed URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise HostNotAllowed("refusing a non-http(s) URL")
    if location not in allowed:
        raise HostNotAllowed(f"refusing host {location} (not a configured API host)")
    return url


def same_host(url: str, base_url: str) -> str:
    """Return `url` when it is on `base_url`'s scheme and host:port (redirects, `next` links)."""
    check_url(url, {netloc(base_url)})
    if urlsplit(url).scheme != urlsplit(base_url).scheme:
        raise HostNotAllowed(f"refusing {urlsplit(url).scheme}: on a {urlsplit(base_url).scheme} API")
    return url
