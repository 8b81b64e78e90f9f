"""Endpoint health: telling an endpoint that does not work from packages that failed.

Some answers no real package can cause: no answer at all (DNS, TLS, connection refused), an HTML
page (a proxy's error page, a maintenance page) where JSON is promised, a server error after every
retry, or a status the source declares endpoint-level for one endpoint (GitHub GraphQL answering the
whole query 401/403/404; a PyPI Simple 404 for a project whose JSON exists). Such an answer is a
*suspect*: `suspect(fetched, rule)` names how it failed, or None.

A `Circuit` per (source, endpoint) watches the answers of one crawl. Failed answers are held back
(not archived) until the endpoint has either answered one non-suspect answer (it works: the held
answers are package facts after all and are archived as usual) or failed `threshold` times with no
success: the circuit *opens*. An open circuit is one endpoint-level error with its evidence (status,
content type, a body excerpt, how many answers); the answers that tripped it, and every later suspect
answer, are not archived, so no package is marked gone or not found by a broken endpoint and the
previous good data stays current. The source stops calling it (`Run.endpoint_open`) and falls back
where it can (GitHub GraphQL -> REST).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.sources.http.fetched import Fetched

EXCERPT_CHARS = 300
# signature classes that say the whole host is unusable (no fallback inside the source helps); a
# server error on every answer is one too, unless another endpoint of the source answers
HOST_WIDE = ("no answer", "HTML")
SERVER_ERROR = "server error"


@dataclass(frozen=True)
class EndpointRule:
    """What a source declares for one endpoint (`Source.endpoint_rule`).

    `statuses`: HTTP statuses that on this endpoint can only mean the endpoint itself is missing or
    refused (never one package); `threshold`: suspect answers, with no success, that open the circuit
    (capped by the answers the run plans, at least 2, so one odd package never opens it);
    `fallback`: the endpoint(s) that take over when it is open (documentation; the source does it).
    """

    statuses: frozenset[int] = frozenset()
    # an answer about one package whatever its content type says (pypistats' 404 for a project
    # without statistics is Flask's bare HTML "404"; a proxy's or a wrong URL's page is not that)
    package_answer: Callable[[Fetched], bool] | None = None
    threshold: int = 5
    fallback: str | None = None


DEFAULT_RULE = EndpointRule()


def suspect(fetched: Fetched, rule: EndpointRule = DEFAULT_RULE) -> str | None:
    """How an answer failed when it is one no package can cause ("no answer: ConnectError", ...)."""
    if fetched.suspect:
        return fetched.suspect
    if fetched.attempts == 0 or fetched.error_kind in (None, "rate_limited", "bad_entry"):
        return None  # derived rows, bad entries, answers, quota limits: not the endpoint's failure
    status = fetched.status
    ctype = (fetched.headers.get("content-type") or "").lower()
    if status == 0 and fetched.error_kind == "transient":
        return f"no answer: {fetched.error or 'transport error'}"
    if rule.package_answer is not None and rule.package_answer(fetched):
        return None
    if "html" in ctype:
        return f"HTML instead of JSON: HTTP {status}"
    if status in rule.statuses:
        return f"endpoint status: HTTP {status}"
    if status >= 500 and fetched.error_kind == "transient":
        return f"server error: HTTP {status} after retries"
    return None


@dataclass
class EndpointError:
    """One endpoint-level failure of a crawl: the evidence of an open circuit."""

    source: str
    endpoint: str
    signature: str
    status: int
    content_type: str
    excerpt: str
    url: str
    requests: int  # suspect answers seen (those that opened it and those dropped after)
    first_seen: datetime
    fallback: str | None = None

    @property
    def request_key(self) -> str:
        return f"{self.source}:endpoint:{self.endpoint}"

    @property
    def subject(self) -> str:
        return f"endpoint:{self.source}:{self.endpoint}"

    @property
    def message(self) -> str:
        then = f"; fell back to {self.fallback}" if self.fallback else "; not called again this run"
        ctype = f" ({self.content_type})" if self.content_type else ""
        body = f": {self.excerpt!r}" if self.excerpt else ""
        return (f"{self.source} endpoint {self.endpoint} is not working: {self.signature}{ctype} "
                f"on {self.requests} answers with no success{then}{body}")

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "endpoint": self.endpoint, "http_status": self.status,
                "content_type": self.content_type, "requests": self.requests, "message": self.message}


@dataclass
class Circuit:
    """One endpoint's health during one crawl: unknown -> healthy, or unknown -> open."""

    source: str
    endpoint: str
    rule: EndpointRule
    threshold: int
    state: str = "unknown"  # unknown | healthy | open
    pending: list[tuple[Any, Fetched, str]] = field(default_factory=list)  # (job, answer, signature or "")
    signatures: Counter[str] = field(default_factory=Counter)
    error: EndpointError | None = None

    @property
    def open(self) -> bool:
        return self.state == "open"

    def host_wide(self, others_healthy: bool) -> bool:
        """Open for a reason that makes the whole host unusable, with no fallback declared."""
        if not self.open or self.rule.fallback is not None or self.error is None:
            return False
        signature = self.error.signature
        return signature.startswith(HOST_WIDE) or (signature.startswith(SERVER_ERROR) and not others_healthy)

    def succeeded(self) -> list[tuple[Any, Fetched, str]]:
        """A non-suspect answer: the endpoint works; returns the held answers to archive."""
        if self.state == "open":
            return []
        self.state = "healthy"
        held, self.pending = self.pending, []
        return held

    def other_failure(self, job: Any, fetched: Fetched) -> str:
        """A failure that is not a suspect (a 404 for one package ...): held while the endpoint is
        not judged (a broken endpoint's answers are none of them package facts), dropped once open."""
        if self.state == "healthy":
            return "archive"
        if self.state == "open":
            return "drop"
        self.pending.append((job, fetched, ""))
        return "hold"

    def failed(self, job: Any, fetched: Fetched, signature: str) -> str:
        """A suspect answer: "archive" (healthy endpoint), "hold" or "drop" (open circuit)."""
        if self.state == "healthy":
            return "archive"
        self.signatures[signature] += 1
        if self.state == "open":
            assert self.error is not None
            self.error.requests += 1
            return "drop"
        self.pending.append((job, fetched, signature))
        suspects = sum(1 for _, _, sig in self.pending if sig)
        if suspects < self.threshold:
            return "hold"
        self.state = "open"
        common = self.signatures.most_common(1)[0][0]
        first = next(f for _, f, s in self.pending if s == common)
        self.error = EndpointError(
            source=self.source, endpoint=self.endpoint, signature=common, status=first.status,
            content_type=(first.headers.get("content-type") or "").split(";")[0].strip(),
            excerpt=" ".join((first.text or first.error or "")[:EXCERPT_CHARS].split()),
            url=first.url, requests=suspects, first_seen=datetime.now(UTC), fallback=self.rule.fallback)
        self.pending = []
        return "drop"
