"""Helpers shared by the simulator tests."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import httpx

TOKEN = {"Authorization": "Bearer test-token-1"}


def client(server, **kw) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=kw.pop("timeout", 10), **kw)


def parse_repo_url(url: str) -> tuple[str, str, str] | None:
    """(host, owner, name) from a catalogue repo URL, or None when it is not usable."""
    url = url.strip()
    if not url or "://" not in url:
        return None
    u = urlparse(url)
    host = u.netloc.lower().removeprefix("www.")
    parts = [p for p in u.path.split("/") if p]
    if host not in ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org") or len(parts) < 2:
        return None
    if host == "gitlab.com":
        stop = parts.index("-") if "-" in parts else len(parts)
        parts = parts[:stop]
        return "gitlab", "/".join(parts[:-1]), parts[-1].removesuffix(".git")
    owner, name = parts[0], parts[1].removesuffix(".git")
    return host.split(".")[0], owner, name


def pypi_name(pypi_url: str) -> str | None:
    s = pypi_url.strip()
    if not s:
        return None
    m = re.match(r"^https?://(?:pypi\.python\.org/pypi|pypi\.org/project)/([^/]+)/?$", s)
    return m.group(1) if m else s
