"""A plain sequential client of every simulated host: the crawl benchmark's baseline.

One request at a time, the crawler's endpoints, no ETags. 202 "statistics being computed" answers
are polled like the crawler polls them (at most `computing_attempts` polls, waits drawn the same
way: uniform up to base * 2**n, capped), so both meet and wait for the same 202s; the time spent in
those waits is counted apart (`waited_202_s`). `fetch(source, unit)` takes a catalogue row (a
repository host) or a project name (PyPI, pypistats), by the crawler's source names. GitHub and PyPI are
fetched here; every other host by the `baseline` its simulator module declares on its `RepoHost` or `PackageHost`
(found in the registry, :mod:`simulator.hosts`), with this client's shared machinery (`client`, `url`,
`pages`, `follow_links`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from simulator.hosts import BY_NAME, PACKAGE_BY_NAME


class Sequential:
    def __init__(self, url: str, *, computing_attempts: int, computing_base_s: float, computing_max_s: float,
                 in_window: Callable[[Any], bool]) -> None:
        self.url = url
        self.computing_attempts = computing_attempts
        self.computing_base_s = computing_base_s
        self.computing_max_s = computing_max_s
        self.in_window = in_window  # a commit date still inside the 52-week window
        self.client = httpx.Client(timeout=30, headers={"Authorization": "Bearer baseline-token"})
        self.rng = random.Random(0)
        self.met_202 = 0
        self.waited_202_s = 0.0

    def close(self) -> None:
        self.client.close()

    def fetch(self, source: str, unit: Any) -> None:
        host = BY_NAME.get(source) or PACKAGE_BY_NAME.get(source)
        if host is not None:
            host.baseline(self, unit)
        elif source == "github":
            self.github(unit)
        elif source == "pypi":
            self.pypi(unit)
        else:
            raise ValueError(f"no sequential baseline for source {source!r}")

    def github(self, row: dict) -> None:
        base = f"{self.url}/api/v3/repos/{row['repo_owner']}/{row['repo_name']}"
        repo = self.client.get(base, follow_redirects=True)
        if repo.status_code != 200:
            return
        data = repo.json()
        base = f"{self.url}/api/v3/repos/{data['full_name']}"
        for attempt in range(1, self.computing_attempts + 1):
            if self.client.get(f"{base}/stats/participation").status_code != 202:
                break
            self.met_202 += 1
            if attempt < self.computing_attempts:
                wait = self.rng.uniform(0, min(self.computing_max_s, self.computing_base_s * 2 ** (attempt - 1)))
                self.waited_202_s += wait
                time.sleep(wait)
        self.follow_links(f"{base}/contributors?per_page=100")
        self.client.get(f"{base}/commits?per_page=1&sha={data['default_branch']}")

    def pypi(self, name: str) -> None:
        self.client.get(f"{self.url}/pypi/{name}/json", follow_redirects=True)
        self.client.get(f"{self.url}/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                        follow_redirects=True)

    def follow_links(self, page: str | None) -> None:
        """Follow every page by its `Link: rel="next"` header, while the answers are 200s."""
        while page:
            answer = self.client.get(page)
            page = answer.links.get("next", {}).get("url") if answer.status_code == 200 else None

    def pages(self, page: str | None, date_of: Callable[[Any], Any],
              next_of: Callable[[httpx.Response, Any], str | None]) -> None:
        """Follow pages while the last one still reaches into the 52-week window.

        An answer's items are its JSON list, or its `values` when it is an object; `date_of` reads an
        item's date, `next_of(answer, body)` the next page's URL (None: the last page).
        """
        while page:
            answer = self.client.get(page)
            if answer.status_code != 200:
                return
            body = answer.json()
            items = body.get("values") if isinstance(body, dict) else body
            if not items or not self.in_window(date_of(items[-1])):
                return
            page = next_of(answer, body)
