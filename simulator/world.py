"""The simulated world: a deterministic, lazily generated directory of Django packages.

Every package is generated from its own RNG seeded with ``(seed, index)``, so a world of 100,000
packages costs almost nothing until a package is looked at, and the same seed always gives the same
data. All timestamps are anchored to ``World.now`` (default 2026-11-01T00:00:00Z).
"""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from packaging.utils import canonicalize_name

DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
REPO_ID_BASE = 20_000_000
REPO_ID_STEP = 13
REBASED_SHARE = 0.3  # commits whose committer date is later than their author date

CATEGORIES = [
    # id, title, slug, title_plural, show_pypi, description
    (1, "App", "apps", "Apps", True,
     "Small components used to build projects. An app is anything that is installed by placing in "
     "settings.INSTALLED_APPS."),
    (2, "Framework", "frameworks", "Frameworks", True,
     "Large efforts that combine many python modules or apps. Examples include Django, Pinax, and "
     "Satchmo. Most CMS falls into this category."),
    (3, "Project", "projects", "Projects", False,
     "Individual projects such as blogs, wikis, e-commerce sites, and the like built with Django."),
    (4, "Other", "other", "Other", True,
     "Other are not installed by INSTALLED_APPS and are not frameworks or sites but still help "
     "Django in some way."),
]

_WORDS_A = [
    "admin", "auth", "rest", "ajax", "cache", "celery", "cms", "comments", "config", "cors", "crispy",
    "csv", "debug", "dynamic", "easy", "email", "extra", "fast", "filter", "forms", "geo", "graph",
    "guardian", "haystack", "health", "history", "i18n", "import", "json", "jwt", "lazy", "ldap",
    "live", "log", "mail", "markdown", "media", "model", "money", "mptt", "multi", "nested", "notify",
    "oauth", "object", "orm", "page", "paginator", "perm", "phone", "polymorphic", "post", "push",
    "query", "queue", "quick", "rate", "redis", "reversion", "rich", "safe", "sass", "search", "secure",
    "select", "seo", "session", "shop", "simple", "site", "sitemap", "slug", "smart", "social",
    "sortable", "static", "storage", "stripe", "super", "tag", "task", "tenant", "test", "text",
    "theme", "thumbnail", "timezone", "token", "tree", "upload", "user", "uuid", "version", "video",
    "view", "vote", "watch", "web", "widget", "wiki", "workflow", "yaml"
]
_WORDS_B = [
    "tools", "utils", "fields", "forms", "views", "toolbar", "framework", "backend", "helpers", "api",
    "kit", "manager", "middleware", "models", "panel", "plus", "widgets", "tags", "extensions",
    "registry", "storage", "builder", "client", "filters", "mixins", "loader", "bridge", "suite",
    "engine", "layer", "core", "compat", "hub", "box", "lab", "pack", "flow", "pages", "blocks",
    "editor", "importer", "exporter", "tracker", "logger", "monitor", "scheduler", "router", "cache",
    "sync", "pipeline", "signals", "generator", "permissions", "admin", "emails"
]
_PREFIXES = ("django-", "django-", "django-", "dj-", "", "drf-", "wagtail-")
_FIRST = [
    "alex", "anna", "ben", "carl", "dana", "eli", "fran", "greg", "hana", "ivan", "jane", "kai", "lena",
    "marc", "nina", "omar", "paul", "quinn", "rosa", "sam", "tara", "uma", "vic", "wes", "xena", "yuri",
    "zoe", "jacob", "mia", "noah", "liam", "emma", "luca", "sofia"
]
_ORGS = [
    "jazzband", "encode", "wagtail", "django-commons", "pinax", "divio", "torchbox", "mozilla",
    "evansd", "etianen", "aaugustin", "fabiocaccamo", "matthewwithanm", "carltongibson", "adamchainz"
]
_ORG_LOGINS = frozenset(o.lower() for o in _ORGS)
_BOTS = ("dependabot[bot]", "pre-commit-ci[bot]", "github-actions[bot]", "renovate[bot]")
_LICENSES = (
    ("mit", "MIT License", "MIT"),
    ("bsd-3-clause", 'BSD 3-Clause "New" or "Revised" License', "BSD-3-Clause"),
    ("apache-2.0", "Apache License 2.0", "Apache-2.0"),
    ("bsd-2-clause", 'BSD 2-Clause "Simplified" License', "BSD-2-Clause"),
    ("gpl-3.0", "GNU General Public License v3.0", "GPL-3.0"),
    ("other", "Other", "NOASSERTION"),
)
_DEAD_HOSTS = (
    "http://code.google.com/p/{name}/",
    "https://code.google.com/p/{name}",
    "https://launchpad.net/{name}",
    "http://{name}.googlecode.com/svn/trunk/",
    "https://sourceforge.net/projects/{name}/",
)
_MALFORMED = (
    "https://github.com/{owner}",
    "https://github.com/",
    "github: {name}",
    "http://",
    "see {name} docs",
)

# rare traits forced onto one package each (so small worlds still have them)
FORCED = (
    "renamed", "deleted", "blocked_dmca", "blocked_tos", "empty", "archived", "fork",
    "contributors_too_large", "many_contributors", "gitlab", "bitbucket", "dead_host", "malformed_url",
    "pypi_only", "yanked_latest", "prerelease_only", "pypi_quarantined", "pypi_archived", "not_on_pypi",
    "inactive_classifier", "project_urls_null", "docs_url", "bots_anonymous", "codeberg",
)

# every trait a test can select packages by (see README)
TRAITS = (
    "github", "gitlab", "bitbucket", "codeberg", "dead_host", "malformed_url", "pypi_only", "repo_only",
    "healthy", "crawlable", "renamed", "archived", "fork", "deleted", "blocked", "blocked_dmca",
    "blocked_tos", "empty", "active", "inactive", "stats_202", "many_contributors", "bots",
    "anonymous_contributors", "contributors_too_large", "no_contributors", "has_release",
    "on_pypi", "not_on_pypi", "yanked_latest", "prerelease_only", "inactive_classifier",
    "project_urls_null", "documentation_url", "docs_url", "pypi_archived", "pypi_quarantined",
    "vulnerable", "url_git_suffix", "url_tree", "url_wiki", "url_uppercase", "url_whitespace",
    "pypi_name_differs", "no_description",
)


def _seed_int(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def sha1(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def is_org(login: str) -> bool:
    """Whether a repository owner is an organization (GitHub ``owner.type``, ``organization``)."""
    return login.lower() in _ORG_LOGINS or login.endswith("-org")


def drf_datetime(value: datetime | None) -> str | None:
    """Render as Django REST framework does, in America/New_York like djangopackages.org."""
    if value is None:
        return None
    text = value.astimezone(NEW_YORK).isoformat()
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text


def gh_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Commit:
    sha: str
    date: datetime  # committer date (what the default branch is ordered by, and `last_updated`)
    author: str | None  # GitHub login (None: no linked account)
    author_name: str
    message: str
    authored: datetime  # author date: earlier than ``date`` for rebased / cherry-picked / merged commits
    committer: str | None = None  # committer login when it differs from the author (None: GitHub web-flow)


@dataclass(slots=True)
class Release:
    version: str
    upload_time: datetime
    yanked: bool
    prerelease: bool
    requires_python: str | None
    files: int


@dataclass(slots=True)
class Package:
    id: int
    slug: str
    title: str
    category_id: int
    created: datetime
    modified: datetime
    last_fetched: datetime
    host: str  # github | gitlab | bitbucket | codeberg | dead | malformed | none
    repo_url: str  # catalogue value, as given (noise included)
    owner: str  # current owner/namespace/workspace on the host
    name: str  # current repo name / slug
    url_owner: str  # what the catalogue URL points at (differs when renamed)
    url_name: str
    repo_id: int
    status: str  # ok | renamed | deleted | blocked_dmca | blocked_tos | empty (github only)
    archived: bool
    fork: bool
    stars: int
    forks: int
    subscribers: int
    open_issues: int
    description: str | None
    homepage: str
    license: tuple[str, str, str] | None
    topics: tuple[str, ...]
    default_branch: str
    repo_created: datetime
    n_contributors: int
    bots: tuple[str, ...]
    n_anonymous: int
    contributors_too_large: bool
    stats_202: int
    pypi_name: str | None  # display name on PyPI (None: no pypi_url)
    pypi_url: str
    pypi_status: str  # ok | missing | none | quarantined
    simple_status: str  # active | archived | quarantined
    yanked_latest: bool
    prerelease_only: bool
    inactive_classifier: bool
    project_urls_null: bool
    docs_in_project_urls: bool
    docs_url: str | None
    catalogue_documentation_url: str | None
    vulnerable: bool
    activity: str  # active | inactive
    last_commit_days: float
    has_gh_release: bool
    traits: frozenset[str] = field(default_factory=frozenset)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def healthy(self) -> bool:
        return "healthy" in self.traits


@dataclass(slots=True)
class SearchIndex:
    """What the catalogue search needs per package, precomputed once: about 20 bytes a package."""

    slugs: list[str]  # slugs[i] is package id i + 1
    titles: dict[int, str]  # package id -> lower-cased title, only where it differs from the slug
    weights: array  # weights[i]: repo_watchers of package id i + 1 (the search ranking)

    def matches(self, q: str, start: int, stop: int) -> list[int]:
        """Package ids in [start + 1, stop] whose slug or title contains ``q`` (lower-cased)."""
        slugs, titles = self.slugs, self.titles
        out = [i + 1 for i in range(start, stop) if q in slugs[i]]
        if titles:
            extra = [pid for pid, t in titles.items() if start < pid <= stop and q in t
                     and q not in slugs[pid - 1]]
            if extra:
                out = sorted(out + extra)
        return out


def _lognormal_int(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return min(cap, int(median * math.exp(rng.gauss(0.0, sigma))))


class World:
    """A deterministic world of ``packages`` packages for ``seed``."""

    def __init__(self, seed: int = 1, packages: int = 250, now: datetime | None = None) -> None:
        if packages < 1:
            raise ValueError("packages must be >= 1")
        self.seed = int(seed)
        self.n = int(packages)
        self.now = (now or DEFAULT_NOW).astimezone(UTC)
        # affine permutation of name combinations, so slugs are unique without a global pass
        self._combos = len(_PREFIXES) * len(_WORDS_A) * len(_WORDS_B)
        rng = random.Random(_seed_int(self.seed, "names"))
        step = rng.randrange(1, self._combos)
        while math.gcd(step, self._combos) != 1:
            step += 1
        self._name_step = step
        self._name_offset = rng.randrange(self._combos)
        self._index: dict[str, dict[str, int]] | None = None
        self._search: SearchIndex | None = None
        self._grids: list[tuple[int, str, str, str, bool, bool, datetime, datetime, tuple[int, ...]]] | None
        self._grids = None
        self._package_grids: dict[int, list[int]] | None = None
        # rare traits are guaranteed in every world of >= 2 * len(FORCED) packages
        self._forced: dict[int, str] = {}
        if self.n >= 2 * len(FORCED):
            k = 0
            for trait in FORCED:
                while True:
                    pid = 1 + (self.seed * 7919 + k * 104_729) % self.n
                    k += 1
                    if pid not in self._forced:
                        self._forced[pid] = trait
                        break
        self.package = lru_cache(maxsize=20_000)(self._make_package)
        self.commits = lru_cache(maxsize=2_000)(self._make_commits)
        self.contributors = lru_cache(maxsize=2_000)(self._make_contributors)
        self.releases = lru_cache(maxsize=4_000)(self._make_releases)

    # ------------------------------------------------------------------ identity
    def _slug(self, pid: int) -> str:
        k = (self._name_offset + (pid - 1) * self._name_step) % self._combos
        k, b = divmod(k, len(_WORDS_B))
        p, a = divmod(k, len(_WORDS_A))
        base = f"{_PREFIXES[p]}{_WORDS_A[a]}-{_WORDS_B[b]}"
        lap = (pid - 1) // self._combos
        return base if lap == 0 else f"{base}-{lap + 1}"

    @property
    def packages(self) -> int:
        """Number of packages in the world (same as ``n``)."""
        return self.n

    def ids(self) -> range:
        return range(1, self.n + 1)

    def _make_package(self, pid: int) -> Package:
        if not 1 <= pid <= self.n:
            raise KeyError(pid)
        rng = random.Random(_seed_int(self.seed, "pkg", pid))
        force = self._forced.get(pid, "")
        now = self.now
        slug = self._slug(pid)
        traits: set[str] = set()
        title = slug if rng.random() < 0.7 else slug.replace("-", " ").title().replace(" ", "-")
        category_id = rng.choices((1, 2, 3, 4), weights=(79, 3, 4, 14))[0]
        created = now - timedelta(days=rng.uniform(60, 5800), microseconds=rng.randrange(1_000_000))
        if rng.random() < 0.05:
            created = created.replace(microsecond=0)
        modified = created + (now - created) * rng.random()
        last_fetched = now - timedelta(hours=rng.uniform(1, 30), microseconds=rng.randrange(1_000_000))

        # ------------------------------------------------------------ host
        r = rng.random()
        if r < 0.815:
            host = "github"
        elif r < 0.83:
            host = "codeberg"  # ~1.5%: Forgejo's public instance
        elif r < 0.86:
            host = "gitlab"
        elif r < 0.89:
            host = "bitbucket"
        elif r < 0.91:
            host = "dead"
        elif r < 0.925:
            host = "malformed"
        else:
            host = "none"
        host = {"gitlab": "gitlab", "bitbucket": "bitbucket", "codeberg": "codeberg", "dead_host": "dead",
                "malformed_url": "malformed", "pypi_only": "none"}.get(force, "github" if force else host)
        if rng.random() < 0.3:
            owner = rng.choice(_ORGS)
        else:
            owner = f"{rng.choice(_FIRST)}{rng.choice(_FIRST)}{rng.randrange(100) if rng.random() < .4 else ''}"
        if rng.random() < 0.2:
            owner = owner.capitalize()
        name = slug if rng.random() < 0.85 else title
        url_owner, url_name = owner, name

        status = "ok"
        r = rng.random()
        if host == "github":
            if r < 0.04:
                status = "renamed"
            elif r < 0.07:
                status = "deleted"
            elif r < 0.075:
                status = "blocked_dmca"
            elif r < 0.08:
                status = "blocked_tos"
            elif r < 0.095:
                status = "empty"
        if force in ("renamed", "deleted", "blocked_dmca", "blocked_tos", "empty"):
            status = force
        elif force:
            status = "ok"
        if status == "renamed":
            if rng.random() < 0.5:
                owner = rng.choice(_ORGS) + "-org"
            else:
                name = f"{name}-legacy" if rng.random() < 0.3 else f"{name}2"
        archived = host == "github" and status in ("ok", "renamed") and rng.random() < 0.08
        fork = host == "github" and status in ("ok", "renamed") and rng.random() < 0.04
        if force:
            archived, fork = force == "archived", force == "fork"

        stars = _lognormal_int(rng, 27, 2.08, 90_000)
        if status == "empty":
            stars = rng.randrange(3)
        forks = int(stars * rng.uniform(0.05, 0.25)) + (rng.random() < 0.5)
        subscribers = max(1, int(stars * rng.uniform(0.01, 0.06)) + rng.randrange(1, 4))
        if subscribers == stars:
            subscribers += 1
        open_issues = int(stars * rng.uniform(0, 0.04)) + rng.randrange(3)
        desc_words = slug.replace("django-", "").replace("-", " ")
        description: str | None = (
            f"{rng.choice(('A', 'Simple', 'Reusable', 'Fast', 'Pluggable'))} {desc_words} "
            f"{rng.choice(('for Django', 'app for Django projects', 'integration', 'done right'))}"
        )
        if rng.random() < 0.06:
            description = None
            traits.add("no_description")
        homepage = f"https://{slug}.readthedocs.io/" if rng.random() < 0.3 else ""
        license_ = rng.choice(_LICENSES) if rng.random() < 0.85 else None
        topics = tuple(sorted(rng.sample(("django", "python", "rest", "forms", "admin", "api", "cms"),
                                         rng.randrange(0, 4))))
        default_branch = "main" if rng.random() < 0.45 else "master"
        repo_created = created - timedelta(days=rng.uniform(0, 400))

        # activity: most packages are inactive (no commit in the last 52 weeks)
        if rng.random() < 0.3 and status != "empty":
            activity = "active"
            last_commit_days = rng.expovariate(1 / 60)
            last_commit_days = min(last_commit_days, 360)
        else:
            activity = "inactive"
            last_commit_days = min(370 + rng.expovariate(1 / 900),
                                   max(371.0, (now - repo_created).days - 1.0))
        if archived:
            activity = "inactive"
            last_commit_days = max(last_commit_days, 370 + rng.random() * 500)

        n_contributors = max(1, _lognormal_int(rng, 2 + stars ** 0.35, 0.8, 400))
        if rng.random() < 0.015 or stars > 20_000:
            n_contributors = rng.randrange(101, 330)
        bots: tuple[str, ...] = ()
        if rng.random() < 0.3:
            bots = tuple(rng.sample(_BOTS, rng.randrange(1, 3)))
        n_anonymous = rng.randrange(1, 6) if rng.random() < 0.2 else 0
        too_large = host == "github" and status == "ok" and rng.random() < 0.004
        if force:
            too_large = force == "contributors_too_large"
        if force == "many_contributors":
            n_contributors = rng.randrange(101, 330)
        if force == "bots_anonymous":
            bots, n_anonymous = ("dependabot[bot]", "pre-commit-ci[bot]"), 2
        stats_202 = rng.choices((0, 1, 2), weights=(55, 35, 10))[0]

        # ------------------------------------------------------------ PyPI
        r = rng.random()
        if force in ("yanked_latest", "prerelease_only", "pypi_quarantined", "pypi_archived", "pypi_only",
                     "inactive_classifier", "project_urls_null", "docs_url"):
            pypi_status = "ok"
        elif force == "not_on_pypi":
            pypi_status = "missing"
        elif host == "none":
            pypi_status = "ok" if rng.random() < 0.9 else "missing"
        elif r < 0.78:
            pypi_status = "ok"
        elif r < 0.82:
            pypi_status = "missing"
        else:
            pypi_status = "none"
        pypi_name: str | None = None
        pypi_url = ""
        if pypi_status != "none":
            r = rng.random()
            if r < 0.6:
                pypi_name = slug
            elif r < 0.75:
                pypi_name = slug.replace("-", " ").title().replace(" ", "-")
            elif r < 0.9:
                pypi_name = slug.replace("-", "_")
            else:
                pypi_name = slug.replace("-", ".")
            form = rng.choice(("bare", "old", "old", "new", "new", "new"))
            shown = pypi_name if rng.random() < 0.8 else pypi_name.lower()
            pypi_url = {
                "bare": shown,
                "old": f"http://pypi.python.org/pypi/{shown}",
                "new": f"https://pypi.org/project/{shown}/",
            }[form]
        simple_status = "active"
        if pypi_status == "ok":
            r = rng.random()
            if r < 0.03:
                simple_status = "archived"
            elif r < 0.04:
                simple_status = "quarantined"
                pypi_status = "quarantined"
        if force == "pypi_quarantined":
            simple_status, pypi_status = "quarantined", "quarantined"
        elif force == "pypi_archived":
            simple_status = "archived"
        elif force:
            simple_status = "active"
        yanked_latest = pypi_status == "ok" and rng.random() < 0.04
        prerelease_only = pypi_status == "ok" and not yanked_latest and rng.random() < 0.03
        inactive_classifier = pypi_status == "ok" and (
            rng.random() < (0.25 if activity == "inactive" else 0.02))
        project_urls_null = pypi_status == "ok" and rng.random() < 0.2
        docs_in_project_urls = pypi_status == "ok" and not project_urls_null and rng.random() < 0.4
        docs_url = (f"https://pythonhosted.org/{pypi_name}/"
                    if pypi_status == "ok" and rng.random() < 0.05 else None)
        if force and pypi_status == "ok":
            yanked_latest = force == "yanked_latest"
            prerelease_only = force == "prerelease_only"
            inactive_classifier = inactive_classifier or force == "inactive_classifier"
            project_urls_null = force == "project_urls_null" or (project_urls_null and force != "docs_url")
            docs_in_project_urls = docs_in_project_urls and not project_urls_null and force != "docs_url"
            if force == "docs_url":
                docs_url = f"https://pythonhosted.org/{pypi_name}/"
        r = rng.random()
        catalogue_doc = (None if r < 0.35 else "" if r < 0.55
                         else f"https://{slug}.readthedocs.io/en/latest/")
        vulnerable = pypi_status == "ok" and rng.random() < 0.03
        has_gh_release = host == "github" and pypi_status == "ok" and rng.random() < 0.5

        # ------------------------------------------------------------ catalogue repo URL (noisy)
        repo_url = ""
        if host == "github":
            repo_url = f"https://github.com/{url_owner}/{url_name}"
            r = rng.random()
            if r < 0.06:
                repo_url += ".git"
                traits.add("url_git_suffix")
            elif r < 0.10:
                repo_url += f"/tree/{default_branch}"
                traits.add("url_tree")
            elif r < 0.12:
                repo_url += "/wiki"
                traits.add("url_wiki")
            elif r < 0.17:
                repo_url += "/"
            elif r < 0.22:
                repo_url = repo_url.replace("https://", "http://")
            elif r < 0.24:
                repo_url = repo_url.replace("github.com", "www.github.com")
            elif r < 0.27:
                repo_url = repo_url.upper().replace("HTTPS://GITHUB.COM", "https://github.com")
                traits.add("url_uppercase")
            if rng.random() < 0.03:
                repo_url = f" {repo_url}  " if rng.random() < 0.5 else f"{repo_url}\n"
                traits.add("url_whitespace")
        elif host == "gitlab":
            if rng.random() < 0.25:
                owner = f"{owner}/{rng.choice(('libs', 'django', 'contrib'))}"
                url_owner = owner
            repo_url = f"https://gitlab.com/{owner}/{name}"
        elif host == "bitbucket":
            owner, name = owner.lower(), name.lower()
            url_owner, url_name = owner, name
            repo_url = f"https://bitbucket.org/{owner}/{name}"
        elif host == "codeberg":
            repo_url = f"https://codeberg.org/{owner}/{name}"
        elif host == "dead":
            repo_url = rng.choice(_DEAD_HOSTS).format(name=slug)
        elif host == "malformed":
            repo_url = rng.choice(_MALFORMED).format(owner=owner, name=slug)

        # ------------------------------------------------------------ traits
        traits.add(host if host in ("github", "gitlab", "bitbucket", "codeberg") else
                   {"dead": "dead_host", "malformed": "malformed_url", "none": "pypi_only"}[host])
        if host == "github":
            if status in ("renamed", "deleted", "empty"):
                traits.add(status)
            if status.startswith("blocked"):
                traits.update(("blocked", status))
            if archived:
                traits.add("archived")
            if fork:
                traits.add("fork")
            if status in ("ok", "renamed", "empty"):
                traits.add("crawlable")
                if n_contributors > 100:
                    traits.add("many_contributors")
                if bots:
                    traits.add("bots")
                if n_anonymous:
                    traits.add("anonymous_contributors")
                if too_large:
                    traits.add("contributors_too_large")
                if stats_202 and status != "empty":
                    traits.add("stats_202")
            if status == "ok" and not too_large:
                traits.add("healthy")
            if has_gh_release:
                traits.add("has_release")
        elif host in ("gitlab", "bitbucket", "codeberg"):
            traits.add("crawlable")
        if status != "empty" and host in ("github", "gitlab", "bitbucket", "codeberg") and status not in (
                "deleted", "blocked_dmca", "blocked_tos"):
            traits.add(activity)
        if status == "empty":
            traits.add("no_contributors")
        if pypi_status == "none":
            traits.add("repo_only")
        elif pypi_status == "missing":
            traits.add("not_on_pypi")
        elif pypi_status == "quarantined":
            traits.add("pypi_quarantined")
        else:
            traits.add("on_pypi")
            if canonicalize_name(pypi_name or "") != pypi_name:
                traits.add("pypi_name_differs")
        for flag, trait in ((yanked_latest, "yanked_latest"), (prerelease_only, "prerelease_only"),
                            (inactive_classifier, "inactive_classifier"),
                            (project_urls_null, "project_urls_null"),
                            (docs_in_project_urls, "documentation_url"), (docs_url, "docs_url"),
                            (simple_status == "archived", "pypi_archived"), (vulnerable, "vulnerable")):
            if flag:
                traits.add(trait)

        return Package(
            id=pid, slug=slug, title=title, category_id=category_id, created=created,
            modified=modified, last_fetched=last_fetched, host=host, repo_url=repo_url,
            owner=owner, name=name, url_owner=url_owner, url_name=url_name,
            repo_id=REPO_ID_BASE + pid * REPO_ID_STEP, status=status, archived=archived, fork=fork,
            stars=stars, forks=forks, subscribers=subscribers, open_issues=open_issues,
            description=description, homepage=homepage, license=license_, topics=topics,
            default_branch=default_branch, repo_created=repo_created, n_contributors=n_contributors,
            bots=bots, n_anonymous=n_anonymous, contributors_too_large=too_large, stats_202=stats_202,
            pypi_name=pypi_name, pypi_url=pypi_url, pypi_status=pypi_status,
            simple_status=simple_status, yanked_latest=yanked_latest, prerelease_only=prerelease_only,
            inactive_classifier=inactive_classifier, project_urls_null=project_urls_null,
            docs_in_project_urls=docs_in_project_urls, docs_url=docs_url,
            catalogue_documentation_url=catalogue_doc, vulnerable=vulnerable, activity=activity,
            last_commit_days=last_commit_days, has_gh_release=has_gh_release,
            traits=frozenset(traits),
        )

    # ------------------------------------------------------------------ selection
    def select(self, *traits: str, exclude: tuple[str, ...] | list[str] = (), limit: int | None = None
               ) -> list[Package]:
        """Packages having all ``traits`` and none of ``exclude``, in id order."""
        for t in (*traits, *exclude):
            if t not in TRAITS:
                raise ValueError(f"unknown trait {t!r}; known: {', '.join(TRAITS)}")
        out = []
        for pid in self.ids():
            p = self.package(pid)
            if p.traits.issuperset(traits) and not p.traits.intersection(exclude):
                out.append(p)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def first(self, *traits: str, exclude: tuple[str, ...] | list[str] = ()) -> Package:
        found = self.select(*traits, exclude=exclude, limit=1)
        if not found:
            raise LookupError(f"no package with traits {traits} (exclude {exclude}) in this world")
        return found[0]

    # ------------------------------------------------------------------ indexes
    def _build_index(self) -> dict[str, dict[str, int]]:
        if self._index is None:
            gh: dict[str, int] = {}
            gl: dict[str, int] = {}
            bb: dict[str, int] = {}
            cb: dict[str, int] = {}
            pypi: dict[str, int] = {}
            slugs: dict[str, int] = {}
            # the search index: what /api/v4/search/ matches and ranks by, without building packages
            haystack: list[str] = []  # slug of package id i + 1
            titles: dict[int, str] = {}  # lower-cased title where it is not the slug
            weights = array("q")  # v4 repo_watchers of package id i + 1
            for pid in self.ids():
                p = self._make_package(pid)
                slugs[p.slug] = pid
                haystack.append(p.slug)
                title = p.title.lower()
                if title != p.slug:
                    titles[pid] = title
                weights.append(self.repo_watchers(p))
                if p.host == "github":
                    gh[f"{p.url_owner}/{p.url_name}".lower()] = pid
                    gh[p.full_name.lower()] = pid
                elif p.host == "gitlab":
                    gl[p.full_name.lower()] = pid
                elif p.host == "bitbucket":
                    bb[p.full_name.lower()] = pid
                elif p.host == "codeberg":
                    cb[p.full_name.lower()] = pid
                if p.pypi_name and p.pypi_status != "missing":
                    pypi[canonicalize_name(p.pypi_name)] = pid
            self._search = SearchIndex(haystack, titles, weights)
            self._index = {"github": gh, "gitlab": gl, "bitbucket": bb, "codeberg": cb, "pypi": pypi,
                           "slug": slugs}
        return self._index

    def warm(self) -> None:
        """Build everything a server would otherwise build on its first requests (indexes, grids)."""
        self._build_index()
        self.package_grids(1)

    def search_index(self) -> SearchIndex:
        """The compact package search index (slugs, titles that differ, repo_watchers), built with the others."""
        self._build_index()
        assert self._search is not None
        return self._search

    def find_github(self, owner: str, name: str) -> Package | None:
        pid = self._build_index()["github"].get(f"{owner}/{name}".lower())
        return self.package(pid) if pid else None

    def find_github_id(self, repo_id: int) -> Package | None:
        pid, rem = divmod(repo_id - REPO_ID_BASE, REPO_ID_STEP)
        if rem or not 1 <= pid <= self.n:
            return None
        p = self.package(pid)
        return p if p.host == "github" else None

    def find_gitlab(self, path: str) -> Package | None:
        pid = self._build_index()["gitlab"].get(path.lower())
        return self.package(pid) if pid else None

    def find_bitbucket(self, ws: str, slug: str) -> Package | None:
        pid = self._build_index()["bitbucket"].get(f"{ws}/{slug}".lower())
        return self.package(pid) if pid else None

    def find_codeberg(self, owner: str, name: str) -> Package | None:
        pid = self._build_index()["codeberg"].get(f"{owner}/{name}".lower())
        return self.package(pid) if pid else None

    def find_pypi(self, name: str) -> Package | None:
        pid = self._build_index()["pypi"].get(canonicalize_name(name))
        return self.package(pid) if pid else None

    def find_slug(self, slug: str) -> Package | None:
        pid = self._build_index()["slug"].get(slug)
        return self.package(pid) if pid else None

    # ------------------------------------------------------------------ grids
    def grids(self) -> list[tuple[int, str, str, str, bool, bool, datetime, datetime, tuple[int, ...]]]:
        """(id, title, slug, description, is_locked, header, created, modified, package ids)."""
        if self._grids is None:
            rng = random.Random(_seed_int(self.seed, "grids"))
            count = max(1, round(self.n / 15))
            if self.n >= 200:
                count = max(count, 30)
            grids = []
            seen: set[str] = set()
            for gid in range(1, count + 1):
                size = min(self.n, 60, max(2, int(2 + rng.paretovariate(1.2) * 3)))
                members = tuple(rng.sample(range(1, self.n + 1), size)) if self.n >= 2 else (1,)
                word = rng.choice(_WORDS_A)
                slug = word if word not in seen else f"{word}-{gid}"
                seen.add(slug)
                title = slug.replace("-", " ").title()
                created = self.now - timedelta(days=rng.uniform(100, 5500),
                                               microseconds=rng.randrange(1_000_000))
                modified = created + (self.now - created) * rng.random()
                grids.append((gid, title, slug, f"Packages for {word} in Django projects.",
                              rng.random() < 0.05, rng.random() < 0.1, created, modified, members))
            self._grids = grids
        return self._grids

    def package_grids(self, pid: int) -> list[int]:
        if self._package_grids is None:
            mapping: dict[int, list[int]] = {}
            for g in self.grids():
                for member in g[8]:
                    mapping.setdefault(member, []).append(g[0])
            self._package_grids = mapping
        return self._package_grids.get(pid, [])

    # ------------------------------------------------------------------ repository history
    def window_start(self) -> datetime:
        return self.now - timedelta(weeks=52)

    def _make_commits(self, pid: int) -> tuple[Commit, ...]:
        """All commits on the default branch, newest first."""
        p = self.package(pid)
        if p.host not in ("github", "gitlab", "bitbucket", "codeberg") or p.status in ("empty", "deleted"):
            return ()
        rng = random.Random(_seed_int(self.seed, "commits", pid))
        newest = self.now - timedelta(days=p.last_commit_days)
        newest = newest.replace(microsecond=0)
        dates = [newest]
        t = newest
        window = self.window_start()
        rate_days = rng.uniform(1.5, 12.0) if p.activity == "active" else rng.uniform(5, 60)
        total = min(1500, 1 + _lognormal_int(rng, 30 + p.stars ** 0.5, 1.0, 1500))
        while len(dates) < total:
            step = rng.expovariate(1 / rate_days)
            if t > window and t - timedelta(days=step) <= window and p.activity == "active":
                step = step  # keep going into the past
            t = t - timedelta(days=step, seconds=rng.randrange(86400))
            if t < p.repo_created:
                break
            dates.append(t.replace(microsecond=0))
        humans = self._human_logins(p)
        # author vs committer: a share of commits were rebased, cherry-picked or applied by a
        # maintainer later than they were written (committer date > author date), like real history.
        # Own RNG, so the rest of the history does not depend on it.
        arng = random.Random(_seed_int(self.seed, "authored", pid))
        maintainer = humans[0] if humans else None
        out = []
        for j, d in enumerate(dates):
            r = rng.random()
            if p.bots and r < 0.1:
                author: str | None = rng.choice(p.bots)
            elif r < 0.13:
                author = None
            else:
                author = humans[min(int(rng.expovariate(0.7)), len(humans) - 1)]
            verb = rng.choice(("Fix", "Add", "Update", "Refactor", "Bump", "Document", "Test"))
            noun = rng.choice(("docs", "tests", "CI config", "admin view", "migrations", "README",
                               "dependencies", "settings", "templates", "typing"))
            authored, committer = d, None
            if arng.random() < REBASED_SHARE:
                authored = d - timedelta(seconds=arng.randrange(90, 40 * 86400))
                committer = maintainer
            out.append(Commit(sha=sha1(self.seed, pid, "c", j), date=d, author=author,
                              author_name=(author or "Anonymous Contributor").replace("[bot]", ""),
                              message=f"{verb} {noun}", authored=authored, committer=committer))
        return tuple(out)

    def participation(self, pid: int) -> list[int]:
        """GitHub stats/participation ``all``: 52 weeks ending at ``now``, oldest first."""
        weeks = [0] * 52
        start = self.window_start()
        for c in self.commits(pid):
            if c.date < start:
                break
            idx = int((c.date - start).total_seconds() // (7 * 86400))
            if 0 <= idx < 52:
                weeks[idx] += 1
        return weeks

    def participation_owner(self, pid: int) -> list[int]:
        p = self.package(pid)
        weeks = [0] * 52
        start = self.window_start()
        for c in self.commits(pid):
            if c.date < start:
                break
            if c.author and c.author.lower() == p.owner.lower():
                weeks[int((c.date - start).total_seconds() // (7 * 86400))] += 1
        return weeks

    def _human_logins(self, p: Package) -> list[str]:
        rng = random.Random(_seed_int(self.seed, "humans", p.id))
        logins = [p.owner.split("/")[0]] if p.owner not in _ORGS else []
        seen = {x.lower() for x in logins}
        while len(logins) < p.n_contributors:
            login = f"{rng.choice(_FIRST)}-{rng.choice(_WORDS_A)}{rng.randrange(1000)}"
            if login.lower() not in seen:
                seen.add(login.lower())
                logins.append(login)
        return logins

    def _make_contributors(self, pid: int) -> tuple[dict, ...]:
        """GitHub contributors in GitHub's order (contributions desc), anonymous ones included.

        Each entry: {"login", "id", "type" ("User"|"Bot"|"Anonymous"), "contributions", "name", "email"}.
        """
        p = self.package(pid)
        if p.host != "github" or p.status == "empty":
            return ()
        rng = random.Random(_seed_int(self.seed, "contrib", pid))
        people = [(login, "User") for login in self._human_logins(p)]
        insert_at = [rng.randrange(0, min(len(people), 6) + 1) for _ in p.bots]
        for bot, pos in zip(p.bots, insert_at, strict=True):
            people.insert(pos, (bot, "Bot"))
        for k in range(p.n_anonymous):
            pos = rng.randrange(0, len(people) + 1)
            people.insert(pos, (f"anon{k}", "Anonymous"))
        top = max(len(people), int(20 + p.stars ** 0.6))
        out = []
        value = top * 3
        for login, kind in people:
            value = max(1, value - rng.randrange(0, max(2, value // 3)))
            entry = {"login": login, "type": kind, "contributions": value}
            if kind == "Anonymous":
                entry["name"] = f"{rng.choice(_FIRST).title()} {rng.choice(_FIRST).title()}"
                entry["email"] = f"{entry['name'].split()[0].lower()}@example.org"
            else:
                entry["id"] = 1_000_000 + _seed_int("user", login.lower()) % 150_000_000
            out.append(entry)
        return tuple(out)

    def contributors_generic(self, pid: int) -> list[dict]:
        """GitLab-style contributors: name, email, commits, additions, deletions (commits desc)."""
        p = self.package(pid)
        counts: dict[str, int] = {}
        for c in self.commits(pid):
            counts[c.author_name] = counts.get(c.author_name, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"name": name, "email": f"{name.lower()}@example.org", "commits": n,
                 "additions": n * (11 + p.id % 7), "deletions": n * (3 + p.id % 5)} for name, n in ranked]

    def _make_releases(self, pid: int) -> tuple[Release, ...]:
        """PyPI releases, oldest first."""
        p = self.package(pid)
        rng = random.Random(_seed_int(self.seed, "releases", pid))
        count = min(80, 1 + _lognormal_int(rng, 5, 1.0, 80))
        first = p.repo_created + timedelta(days=rng.uniform(1, 60))
        commits = self.commits(pid)
        last = commits[0].date if commits else self.now - timedelta(days=rng.uniform(30, 3000))
        last = max(last, first + timedelta(days=1))
        major, minor, patch = 0, 1, 0
        out = []
        for k in range(count):
            when = first + (last - first) * (k / max(1, count - 1)) if count > 1 else last
            when = when.replace(microsecond=rng.randrange(1_000_000))
            if p.prerelease_only:
                version = f"0.{minor}.0a{k + 1}" if k % 3 else f"0.{minor}.0b{k + 1}"
                out.append(Release(version, when, False, True, ">=3.8", 1))
                continue
            if k:
                r = rng.random()
                if r < 0.6:
                    patch += 1
                elif r < 0.92:
                    minor, patch = minor + 1, 0
                else:
                    major, minor, patch = major + 1, 0, 0
            version = f"{major}.{minor}.{patch}"
            pre = rng.random() < 0.05 and k != count - 1
            if pre:
                version += f"rc{rng.randrange(1, 3)}"
            rp = None if k < count // 3 else rng.choice((">=3.6", ">=3.8", ">=3.10"))
            out.append(Release(version, when, False, pre, rp, 1 if rng.random() < 0.3 else 2))
        if p.yanked_latest and len(out) >= 1:
            last_rel = out[-1]
            if len(out) == 1:
                # need a non-yanked one before it
                out.insert(0, Release("0.0.9", first, False, False, None, 1))
            out[-1] = Release(last_rel.version, last_rel.upload_time, True, False,
                              last_rel.requires_python, last_rel.files)
        return tuple(out)

    def pypi_latest(self, pid: int) -> Release | None:
        """The release PyPI's JSON API shows in ``info`` (newest non-yanked final, else newest)."""
        rels = self.releases(pid)
        if not rels:
            return None
        ranked = sorted(range(len(rels)), key=lambda i: (rels[i].yanked, rels[i].prerelease, -i))
        return rels[ranked[0]]

    def gh_latest_release(self, pid: int) -> Release | None:
        p = self.package(pid)
        if not p.has_gh_release:
            return None
        finals = [r for r in self.releases(pid) if not r.prerelease and not r.yanked]
        return finals[-1] if finals else None

    # ------------------------------------------------------------------ export semantics
    def documentation_url(self, p: Package) -> str | None:
        if p.pypi_status == "ok":
            if p.docs_in_project_urls:
                return f"https://{p.slug}.readthedocs.io/"
            if p.docs_url:
                return p.docs_url
        return p.catalogue_documentation_url

    @staticmethod
    def repo_watchers(p: Package) -> int:
        """The v4 ``repo_watchers`` of a package: stars of a crawlable GitHub/GitLab/Codeberg repo, else 0."""
        if "crawlable" in p.traits and p.host in ("github", "gitlab", "codeberg"):
            return p.stars
        return 0

    def v4_package(self, pid: int, base: str) -> dict:
        """The djangopackages API v4 record, computed with the export semantics."""
        p = self.package(pid)
        watchers = forks = 0
        description = ""
        commits_over_52: list[int] = []
        participants: list[str] = []
        last_updated = None
        crawlable = "crawlable" in p.traits
        if crawlable:
            commits = self.commits(pid)
            last_updated = commits[0].date if commits else None  # the committer date, never `authored`
            description = p.description or ""
            watchers = self.repo_watchers(p)
            if p.host == "github":
                forks = p.forks
                if p.status != "empty":
                    commits_over_52 = self.participation(pid)
                if not p.contributors_too_large:
                    participants = [c["login"] for c in self.contributors(pid) if c["type"] != "Anonymous"]
            elif p.host in ("gitlab", "codeberg"):
                forks = p.forks
        latest = self.pypi_latest(pid) if p.pypi_status == "ok" else None
        return {
            "category": f"{base}/api/v4/categories/{p.category_id}/",
            "grids": [f"{base}/api/v4/grids/{g}/" for g in self.package_grids(pid)],
            "id": p.id,
            "title": p.title,
            "slug": p.slug,
            "last_updated": drf_datetime(last_updated),
            "last_fetched": drf_datetime(p.last_fetched),
            "repo_url": p.repo_url,
            "pypi_version": latest.version if latest else None,
            "created": drf_datetime(p.created),
            "modified": drf_datetime(p.modified),
            "repo_forks": forks,
            "repo_description": description,
            "pypi_url": p.pypi_url,
            "documentation_url": self.documentation_url(p),
            "repo_watchers": watchers,
            "commits_over_52": commits_over_52,
            "participants": participants,
        }

    def v4_grid(self, gid: int, base: str) -> dict:
        g = self.grids()[gid - 1]
        members = sorted(g[8], key=lambda pid: (self.package(pid).title.lower(), pid))
        return {
            "id": g[0], "title": g[1], "slug": g[2], "description": g[3], "is_locked": g[4],
            "packages": [f"{base}/api/v4/packages/{pid}/" for pid in members],
            "header": g[5], "created": drf_datetime(g[6]), "modified": drf_datetime(g[7]),
        }

    def v4_category(self, cid: int) -> dict:
        c = CATEGORIES[cid - 1]
        created = datetime(2010, 8, 14, 2, 0, 0, 123456, tzinfo=UTC) + timedelta(days=cid)
        return {
            "id": c[0], "title": c[1], "slug": c[2], "description": c[5], "title_plural": c[3],
            "show_pypi": c[4], "created": drf_datetime(created),
            "modified": drf_datetime(created + timedelta(days=3000 + cid * 17, seconds=cid)),
        }
