"""The simulated world: a deterministic, lazily generated directory of Django packages.

Every package is generated from its own RNG seeded with ``(seed, index)``, so a world of 100,000
packages costs almost nothing until a package is looked at, and the same seed always gives the same
data. All timestamps are anchored to ``World.now`` (default 2026-11-01T00:00:00Z).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from simulator.model import Commit, Package, Release, RepoHost, sha1

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

def _forced(hosts: Sequence[RepoHost]) -> tuple[str, ...]:
    """Rare traits forced onto one package each (so small worlds still have them), in a fixed order.

    The order picks which package gets which trait: a host's trait goes where its module says
    (``RepoHost.forced_after``: right after one of the traits below; hosts after the same trait follow
    it in the registry's order), so each world stays what it was when the host was added.
    """
    out = ["renamed", "deleted", "blocked_dmca", "blocked_tos", "empty", "archived", "fork",
           "contributors_too_large", "many_contributors", "dead_host", "malformed_url",
           "pypi_only", "yanked_latest", "prerelease_only", "pypi_quarantined", "pypi_archived", "not_on_pypi",
           "inactive_classifier", "project_urls_null", "docs_url", "bots_anonymous"]
    placed: set[str] = set()
    for host in hosts:
        if host.forced_after is None:
            continue
        if host.forced_after not in out or host.forced_after in placed:
            raise ValueError(f"{host.name}: forced_after names no trait of the generator: {host.forced_after!r}")
        at = out.index(host.forced_after) + 1
        while at < len(out) and out[at] in placed:  # after the hosts already placed after that trait
            at += 1
        out.insert(at, host.name)
        placed.add(host.name)
    out += [h.name for h in hosts if h.forced_after is None]
    return tuple(out)


# every trait a test can select packages by (see README), after "github" and the registry's host names
_TRAITS = (
    "dead_host", "malformed_url", "pypi_only", "repo_only",
    "healthy", "crawlable", "renamed", "archived", "fork", "deleted", "blocked", "blocked_dmca",
    "blocked_tos", "empty", "active", "inactive", "stats_202", "many_contributors", "bots",
    "anonymous_contributors", "contributors_too_large", "no_contributors", "has_release",
    "on_pypi", "not_on_pypi", "yanked_latest", "prerelease_only", "inactive_classifier",
    "project_urls_null", "documentation_url", "docs_url", "pypi_archived", "pypi_quarantined",
    "vulnerable", "url_git_suffix", "url_tree", "url_wiki", "url_uppercase", "url_whitespace",
    "pypi_name_differs", "no_description",
)
# the share of packages GitHub takes (the registry's hosts take theirs after it), then the catalogue's
# repo URLs that lead nowhere: a dead host, a malformed URL, none
GITHUB_SHARE = 0.815
_NOWHERE = (("dead", 0.02), ("malformed", 0.015))


def _host_bands(hosts: Sequence[RepoHost]) -> tuple[tuple[float, str], ...]:
    """(upper bound, host) of the world's host draw, in the registry's order after GitHub."""
    bands, top = [(GITHUB_SHARE, "github")], GITHUB_SHARE
    for name, share in [*((h.name, h.share) for h in hosts), *_NOWHERE]:
        top = round(top + share, 9)
        bands.append((top, name))
    return tuple(bands)


class Hosts:
    """What the generator reads from the registry of repository hosts (:data:`simulator.hosts.REPO_HOSTS`).

    The registry is passed in (``World(..., hosts=REPO_HOSTS)``): host modules answer from a world, so
    this module cannot import them.
    """

    def __init__(self, hosts: Sequence[RepoHost]) -> None:
        self.by_name: dict[str, RepoHost] = {h.name: h for h in hosts}
        self.forced = _forced(hosts)
        self.traits: tuple[str, ...] = ("github", *self.by_name, *_TRAITS)
        # hosts whose repositories have a history
        self.hosting = frozenset(("github", *self.by_name))
        self.forced_host = {**{h: h for h in self.by_name}, "dead_host": "dead", "malformed_url": "malformed",
                            "pypi_only": "none"}
        self.bands = _host_bands(hosts)


def _seed_int(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


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


_PACKAGE_FIELDS = tuple(f.name for f in fields(Package) if f.name != "traits")  # once: fields() is slow


class _Draft:
    """A package being drawn: the steps of :meth:`World._make_package` fill it in, in order."""

    def __init__(self, pid: int, slug: str, force: str, now: datetime, hosts: Hosts) -> None:
        self.id, self.slug, self.force, self.now, self.hosts = pid, slug, force, now, hosts
        self.traits: set[str] = set()

    def package(self) -> Package:
        _traits(self)
        values = {name: getattr(self, name) for name in _PACKAGE_FIELDS}
        return Package(**values, traits=frozenset(self.traits))


def _catalogue_row(rng: random.Random, d: _Draft) -> None:
    """Title, category and the catalogue's own dates."""
    now, slug = d.now, d.slug
    d.title = slug if rng.random() < 0.7 else slug.replace("-", " ").title().replace(" ", "-")
    d.category_id = rng.choices((1, 2, 3, 4), weights=(79, 3, 4, 14))[0]
    d.created = now - timedelta(days=rng.uniform(60, 5800), microseconds=rng.randrange(1_000_000))
    if rng.random() < 0.05:
        d.created = d.created.replace(microsecond=0)
    d.modified = d.created + (now - d.created) * rng.random()
    d.last_fetched = now - timedelta(hours=rng.uniform(1, 30), microseconds=rng.randrange(1_000_000))


def _choose_host(rng: random.Random, d: _Draft) -> None:
    """Where the repository is (a forced trait decides for its package), and who owns it, by which name."""
    r = rng.random()
    host = next((name for top, name in d.hosts.bands if r < top), "none")
    d.host = d.hosts.forced_host.get(d.force, "github" if d.force else host)
    if rng.random() < 0.3:
        owner = rng.choice(_ORGS)
    else:
        owner = f"{rng.choice(_FIRST)}{rng.choice(_FIRST)}{rng.randrange(100) if rng.random() < .4 else ''}"
    if rng.random() < 0.2:
        owner = owner.capitalize()
    d.owner = owner
    d.name = d.slug if rng.random() < 0.85 else d.title
    d.url_owner, d.url_name = d.owner, d.name


def _repository_place(rng: random.Random, d: _Draft) -> None:
    """GitHub's repository states (renamed, deleted, blocked, empty), archived and fork flags."""
    status = "ok"
    r = rng.random()
    if d.host == "github":
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
    force = d.force
    if force in ("renamed", "deleted", "blocked_dmca", "blocked_tos", "empty"):
        status = force
    elif force:
        status = "ok"
    if status == "renamed":
        if rng.random() < 0.5:
            d.owner = rng.choice(_ORGS) + "-org"
        else:
            d.name = f"{d.name}-legacy" if rng.random() < 0.3 else f"{d.name}2"
    d.status = status
    d.archived = d.host == "github" and status in ("ok", "renamed") and rng.random() < 0.08
    d.fork = d.host == "github" and status in ("ok", "renamed") and rng.random() < 0.04
    if force:
        d.archived, d.fork = force == "archived", force == "fork"


def _repository_facts(rng: random.Random, d: _Draft) -> None:
    """Popularity, description, homepage, license, topics, default branch, creation date."""
    d.stars = stars = _lognormal_int(rng, 27, 2.08, 90_000)
    if d.status == "empty":
        d.stars = stars = rng.randrange(3)
    d.forks = int(stars * rng.uniform(0.05, 0.25)) + (rng.random() < 0.5)
    d.subscribers = max(1, int(stars * rng.uniform(0.01, 0.06)) + rng.randrange(1, 4))
    if d.subscribers == stars:
        d.subscribers += 1
    d.open_issues = int(stars * rng.uniform(0, 0.04)) + rng.randrange(3)
    desc_words = d.slug.replace("django-", "").replace("-", " ")
    d.description = (
        f"{rng.choice(('A', 'Simple', 'Reusable', 'Fast', 'Pluggable'))} {desc_words} "
        f"{rng.choice(('for Django', 'app for Django projects', 'integration', 'done right'))}"
    )
    if rng.random() < 0.06:
        d.description = None
        d.traits.add("no_description")
    d.homepage = f"https://{d.slug}.readthedocs.io/" if rng.random() < 0.3 else ""
    d.license = rng.choice(_LICENSES) if rng.random() < 0.85 else None
    d.topics = tuple(sorted(rng.sample(("django", "python", "rest", "forms", "admin", "api", "cms"),
                                       rng.randrange(0, 4))))
    d.default_branch = "main" if rng.random() < 0.45 else "master"
    d.repo_created = d.created - timedelta(days=rng.uniform(0, 400))


def _activity(rng: random.Random, d: _Draft) -> None:
    """Active (a commit in the last 52 weeks) or, for most packages, inactive; when the last commit was."""
    if rng.random() < 0.3 and d.status != "empty":
        d.activity = "active"
        d.last_commit_days = min(rng.expovariate(1 / 60), 360)
    else:
        d.activity = "inactive"
        d.last_commit_days = min(370 + rng.expovariate(1 / 900),
                                 max(371.0, (d.now - d.repo_created).days - 1.0))
    if d.archived:
        d.activity = "inactive"
        d.last_commit_days = max(d.last_commit_days, 370 + rng.random() * 500)


def _people(rng: random.Random, d: _Draft) -> None:
    """How many contributors, which bots, anonymous ones, and how GitHub's statistics answer."""
    d.n_contributors = max(1, _lognormal_int(rng, 2 + d.stars ** 0.35, 0.8, 400))
    if rng.random() < 0.015 or d.stars > 20_000:
        d.n_contributors = rng.randrange(101, 330)
    d.bots = ()
    if rng.random() < 0.3:
        d.bots = tuple(rng.sample(_BOTS, rng.randrange(1, 3)))
    d.n_anonymous = rng.randrange(1, 6) if rng.random() < 0.2 else 0
    d.contributors_too_large = d.host == "github" and d.status == "ok" and rng.random() < 0.004
    force = d.force
    if force:
        d.contributors_too_large = force == "contributors_too_large"
    if force == "many_contributors":
        d.n_contributors = rng.randrange(101, 330)
    if force == "bots_anonymous":
        d.bots, d.n_anonymous = ("dependabot[bot]", "pre-commit-ci[bot]"), 2
    d.stats_202 = rng.choices((0, 1, 2), weights=(55, 35, 10))[0]


def _pypi_project(rng: random.Random, d: _Draft) -> None:
    """The PyPI side: whether and under which display name, URL form, status, release and docs quirks."""
    force = d.force
    r = rng.random()
    if force in ("yanked_latest", "prerelease_only", "pypi_quarantined", "pypi_archived", "pypi_only",
                 "inactive_classifier", "project_urls_null", "docs_url"):
        status = "ok"
    elif force == "not_on_pypi":
        status = "missing"
    elif d.host == "none":
        status = "ok" if rng.random() < 0.9 else "missing"
    elif r < 0.78:
        status = "ok"
    elif r < 0.82:
        status = "missing"
    else:
        status = "none"
    d.pypi_name, d.pypi_url = _pypi_name_and_url(rng, d.slug) if status != "none" else (None, "")
    d.simple_status = "active"
    if status == "ok":
        r = rng.random()
        if r < 0.03:
            d.simple_status = "archived"
        elif r < 0.04:
            d.simple_status = status = "quarantined"
    if force == "pypi_quarantined":
        d.simple_status, status = "quarantined", "quarantined"
    elif force == "pypi_archived":
        d.simple_status = "archived"
    elif force:
        d.simple_status = "active"
    d.pypi_status = status
    _pypi_quirks(rng, d)
    r = rng.random()
    d.catalogue_documentation_url = (None if r < 0.35 else "" if r < 0.55
                                     else f"https://{d.slug}.readthedocs.io/en/latest/")
    d.vulnerable = status == "ok" and rng.random() < 0.03
    d.has_gh_release = d.host == "github" and status == "ok" and rng.random() < 0.5


def _pypi_name_and_url(rng: random.Random, slug: str) -> tuple[str, str]:
    """The display name on PyPI and the catalogue's pypi_url (bare name, old or new URL form)."""
    r = rng.random()
    if r < 0.6:
        name = slug
    elif r < 0.75:
        name = slug.replace("-", " ").title().replace(" ", "-")
    elif r < 0.9:
        name = slug.replace("-", "_")
    else:
        name = slug.replace("-", ".")
    form = rng.choice(("bare", "old", "old", "new", "new", "new"))
    shown = name if rng.random() < 0.8 else name.lower()
    return name, {"bare": shown, "old": f"http://pypi.python.org/pypi/{shown}",
                  "new": f"https://pypi.org/project/{shown}/"}[form]


def _pypi_quirks(rng: random.Random, d: _Draft) -> None:
    """Yanked or pre-release-only latest, an inactive classifier, project URLs, documentation URLs."""
    ok = d.pypi_status == "ok"
    d.yanked_latest = ok and rng.random() < 0.04
    d.prerelease_only = ok and not d.yanked_latest and rng.random() < 0.03
    d.inactive_classifier = ok and rng.random() < (0.25 if d.activity == "inactive" else 0.02)
    d.project_urls_null = ok and rng.random() < 0.2
    d.docs_in_project_urls = ok and not d.project_urls_null and rng.random() < 0.4
    d.docs_url = f"https://pythonhosted.org/{d.pypi_name}/" if ok and rng.random() < 0.05 else None
    force = d.force
    if force and ok:
        d.yanked_latest = force == "yanked_latest"
        d.prerelease_only = force == "prerelease_only"
        d.inactive_classifier = d.inactive_classifier or force == "inactive_classifier"
        d.project_urls_null = force == "project_urls_null" or (d.project_urls_null and force != "docs_url")
        d.docs_in_project_urls = d.docs_in_project_urls and not d.project_urls_null and force != "docs_url"
        if force == "docs_url":
            d.docs_url = f"https://pythonhosted.org/{d.pypi_name}/"


def _catalogue_repo_url(rng: random.Random, d: _Draft) -> None:
    """The catalogue's repo_url as people typed it: GitHub's with its noise, the other hosts' as declared."""
    d.repo_url = ""
    if d.host == "github":
        d.repo_url = _noisy_github_url(rng, d)
    elif d.host in d.hosts.by_name:
        host = d.hosts.by_name[d.host]
        d.owner, d.name = host.place(rng, d.owner, d.name)
        d.url_owner, d.url_name = d.owner, d.name
        d.repo_url = f"https://{host.domain}/{d.owner}/{d.name}"
    elif d.host == "dead":
        d.repo_url = rng.choice(_DEAD_HOSTS).format(name=d.slug)
    elif d.host == "malformed":
        d.repo_url = rng.choice(_MALFORMED).format(owner=d.owner, name=d.slug)
    d.repo_id = REPO_ID_BASE + d.id * REPO_ID_STEP


def _noisy_github_url(rng: random.Random, d: _Draft) -> str:
    url = f"https://github.com/{d.url_owner}/{d.url_name}"
    r = rng.random()
    if r < 0.06:
        url += ".git"
        d.traits.add("url_git_suffix")
    elif r < 0.10:
        url += f"/tree/{d.default_branch}"
        d.traits.add("url_tree")
    elif r < 0.12:
        url += "/wiki"
        d.traits.add("url_wiki")
    elif r < 0.17:
        url += "/"
    elif r < 0.22:
        url = url.replace("https://", "http://")
    elif r < 0.24:
        url = url.replace("github.com", "www.github.com")
    elif r < 0.27:
        url = url.upper().replace("HTTPS://GITHUB.COM", "https://github.com")
        d.traits.add("url_uppercase")
    if rng.random() < 0.03:
        url = f" {url}  " if rng.random() < 0.5 else f"{url}\n"
        d.traits.add("url_whitespace")
    return url


def _traits(d: _Draft) -> None:
    """The traits tests select packages by, from what was drawn (no draws)."""
    traits, host, status = d.traits, d.host, d.status
    hosting = d.hosts.hosting
    traits.add(host if host in hosting else
               {"dead": "dead_host", "malformed": "malformed_url", "none": "pypi_only"}[host])
    if host == "github":
        _github_traits(d)
    elif host in d.hosts.by_name:
        traits.add("crawlable")
    if status != "empty" and host in hosting and status not in ("deleted", "blocked_dmca", "blocked_tos"):
        traits.add(d.activity)
    if status == "empty":
        traits.add("no_contributors")
    traits.add({"none": "repo_only", "missing": "not_on_pypi", "quarantined": "pypi_quarantined"}.get(
        d.pypi_status, "on_pypi"))
    if d.pypi_status == "ok" and pep503(d.pypi_name or "") != d.pypi_name:
        traits.add("pypi_name_differs")
    for flag, trait in ((d.yanked_latest, "yanked_latest"), (d.prerelease_only, "prerelease_only"),
                        (d.inactive_classifier, "inactive_classifier"),
                        (d.project_urls_null, "project_urls_null"),
                        (d.docs_in_project_urls, "documentation_url"), (d.docs_url, "docs_url"),
                        (d.simple_status == "archived", "pypi_archived"), (d.vulnerable, "vulnerable")):
        if flag:
            traits.add(trait)


def _github_traits(d: _Draft) -> None:
    traits, status = d.traits, d.status
    if status in ("renamed", "deleted", "empty"):
        traits.add(status)
    if status.startswith("blocked"):
        traits.update(("blocked", status))
    if d.archived:
        traits.add("archived")
    if d.fork:
        traits.add("fork")
    if status in ("ok", "renamed", "empty"):
        traits.add("crawlable")
        for flag, trait in ((d.n_contributors > 100, "many_contributors"), (d.bots, "bots"),
                            (d.n_anonymous, "anonymous_contributors"),
                            (d.contributors_too_large, "contributors_too_large"),
                            (d.stats_202 and status != "empty", "stats_202")):
            if flag:
                traits.add(trait)
    if status == "ok" and not d.contributors_too_large:
        traits.add("healthy")
    if d.has_gh_release:
        traits.add("has_release")


class World:
    """A deterministic world of ``packages`` packages for ``seed``, on GitHub and the registry's ``hosts``
    (pass :data:`simulator.hosts.REPO_HOSTS`; their order, shares and forced traits are part of the world)."""

    def __init__(self, seed: int = 1, packages: int = 250, now: datetime | None = None, *,
                 hosts: Sequence[RepoHost]) -> None:
        if packages < 1:
            raise ValueError("packages must be >= 1")
        self._hosts = Hosts(hosts)
        self.traits = self._hosts.traits  # every trait select() knows
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
        # rare traits are guaranteed in every world of >= 2 * len(forced) packages
        forced = self._hosts.forced
        self._forced: dict[int, str] = {}
        if self.n >= 2 * len(forced):
            k = 0
            for trait in forced:
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
        """One package, drawn from its own RNG: each step below draws in turn, always in the same order."""
        if not 1 <= pid <= self.n:
            raise KeyError(pid)
        rng = random.Random(_seed_int(self.seed, "pkg", pid))
        d = _Draft(pid, self._slug(pid), self._forced.get(pid, ""), self.now, self._hosts)
        _catalogue_row(rng, d)
        _choose_host(rng, d)
        _repository_place(rng, d)
        _repository_facts(rng, d)
        _activity(rng, d)
        _people(rng, d)
        _pypi_project(rng, d)
        _catalogue_repo_url(rng, d)
        return d.package()

    # ------------------------------------------------------------------ selection
    def select(self, *traits: str, exclude: tuple[str, ...] | list[str] = (), limit: int | None = None
               ) -> list[Package]:
        """Packages having all ``traits`` and none of ``exclude``, in id order."""
        for t in (*traits, *exclude):
            if t not in self.traits:
                raise ValueError(f"unknown trait {t!r}; known: {', '.join(self.traits)}")
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
            hosted: dict[str, dict[str, int]] = {name: {} for name in self._hosts.by_name}  # owner/name, lower-cased
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
                elif p.host in hosted:
                    hosted[p.host][p.full_name.lower()] = pid
                if p.pypi_name and p.pypi_status != "missing":
                    pypi[pep503(p.pypi_name)] = pid
            self._search = SearchIndex(haystack, titles, weights)
            self._index = {**hosted, "github": gh, "pypi": pypi, "slug": slugs}
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

    def find_hosted(self, host: str, full_name: str) -> Package | None:
        """The package whose repository is ``full_name`` (``owner/name``, any case) on a registry host."""
        pid = self._build_index()[host].get(full_name.lower())
        return self.package(pid) if pid else None

    def find_pypi(self, name: str) -> Package | None:
        pid = self._build_index()["pypi"].get(pep503(name))
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
        if p.host not in self._hosts.hosting or p.status in ("empty", "deleted"):
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

    def vulnerabilities(self, pid: int) -> tuple[dict, ...]:
        """The PyPI JSON's ``vulnerabilities`` for the project's latest version (OSV entries, as PyPI
        serves them). A ``vulnerable`` package has 1-3 advisories against it (unfixed, or fixed in
        a version not yet released), sometimes next to a withdrawn one; about one other project on
        PyPI in 150 has only a withdrawn advisory (it does not count). Drawn from a stream of its
        own keyed by package id, so the rest of the world does not move."""
        p = self.package(pid)
        latest = self.pypi_latest(pid) if p.pypi_status == "ok" else None
        if latest is None:
            return ()
        rng = random.Random(_seed_int(self.seed, "vulnerabilities", pid))
        name = p.pypi_name or p.slug
        year = min(self.now.year, max(2019, latest.upload_time.year))
        parts = latest.version.split(".")
        next_patch = ".".join([*parts[:-1], str(int(parts[-1]) + 1)]) if parts[-1].isdigit() else None

        def entry(k: int, *, withdrawn: bool = False) -> dict:
            cve = f"CVE-{year}-{10_000 + (pid * 7 + k * 3_001) % 89_999}"
            if k == 0:  # the first advisory keeps the ids the world always had
                vid, cve = f"PYSEC-2024-{100 + pid}", f"CVE-2024-{10000 + pid}"
            elif rng.random() < 0.5:
                vid = f"PYSEC-{year}-{200 + (pid * 13 + k) % 9_000}"
            else:
                vid = "GHSA-" + "-".join(sha1(pid, k, part)[:4] for part in ("a", "b", "c"))
            kind = rng.choice(("a cross-site scripting (XSS) issue", "an SQL injection", "an open redirect",
                               "a denial of service via crafted input", "an information disclosure"))
            when = self.now - timedelta(days=rng.uniform(5, 300))
            return {
                "aliases": [cve], "details": f"{name} {latest.version} and earlier are affected by {kind}.",
                "fixed_in": [next_patch] if next_patch and rng.random() < 0.4 else [], "id": vid,
                "link": f"https://osv.dev/vulnerability/{vid}", "source": "osv", "summary": None,
                "withdrawn": when.strftime("%Y-%m-%dT%H:%M:%SZ") if withdrawn else None,
            }

        if p.vulnerable:
            out = [entry(k) for k in range(rng.choice((1, 1, 1, 2, 2, 3)))]
            if rng.random() < 0.25:
                out.append(entry(len(out), withdrawn=True))
            return tuple(out)
        return (entry(1, withdrawn=True),) if rng.random() < 1 / 150 else ()

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

    def repo_watchers(self, p: Package) -> int:
        """The v4 ``repo_watchers`` of a package: stars of a crawlable repository where the host has stars."""
        by_name = self._hosts.by_name
        if "crawlable" in p.traits and (p.host == "github" or (p.host in by_name and by_name[p.host].v4_stars)):
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
            elif self._hosts.by_name[p.host].v4_forks:
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
