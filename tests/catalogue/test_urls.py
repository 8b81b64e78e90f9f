"""Repository URL and PyPI name parsing: the accepted forms, every rejection reason, real catalogues."""

from __future__ import annotations

import bz2
import csv
import json
from collections import Counter

import pytest

from assets.catalogue.urls import (
    RepoRef,
    parse_pypi,
    parse_repo_url,
)
from pipelines.sources.webpaths import RepoProblem

ACCEPTED = [
    ("https://github.com/mgrouchy/django-stronghold", "github", "mgrouchy", "django-stronghold"),
    ("http://github.com/mgrouchy/django-stronghold", "github", "mgrouchy", "django-stronghold"),
    ("https://www.github.com/mgrouchy/django-stronghold", "github", "mgrouchy", "django-stronghold"),
    ("https://github.com/mgrouchy/django-stronghold.git", "github", "mgrouchy", "django-stronghold"),
    ("https://github.com/mgrouchy/django-stronghold/", "github", "mgrouchy", "django-stronghold"),
    ("https://github.com/mgrouchy/django-stronghold.git/", "github", "mgrouchy", "django-stronghold"),
    ("https://github.com/o/r/tree/main/docs/x.md", "github", "o", "r"),
    ("https://github.com/o/r/tree/feature/with/slashes", "github", "o", "r"),
    ("https://github.com/o/r/blob/master/README.rst#install", "github", "o", "r"),
    ("https://github.com/o/r/wiki", "github", "o", "r"),
    ("https://github.com/o/r/issues", "github", "o", "r"),
    ("https://github.com/o/r#readme", "github", "o", "r"),
    ("https://github.com/o/r?tab=readme-ov-file", "github", "o", "r"),
    ("HTTPS://GITHUB.COM/Owner/Repo", "github", "Owner", "Repo"),
    ("  https://github.com/o/r \n", "github", "o", "r"),
    ("git@github.com:o/r.git", "github", "o", "r"),
    ("git://github.com/o/r.git", "github", "o", "r"),
    ("ssh://git@github.com/o/r.git", "github", "o", "r"),
    ("github.com/o/r", "github", "o", "r"),
    ("www.github.com/o/r", "github", "o", "r"),
    ("https://github.com:443/o/r", "github", "o", "r"),
    ("http://github.com:80/o/r", "github", "o", "r"),
    ("https://github.com/51Degrees/51Degrees-PatternWrapper-Python", "github", "51Degrees",
     "51Degrees-PatternWrapper-Python"),
    ("https://github.com/o/.github", "github", "o", ".github"),
    ("https://github.com/o/r.js", "github", "o", "r.js"),
    ("https://github.com/o/r_with_underscores", "github", "o", "r_with_underscores"),
    ("https://github.com/a-b-c/r", "github", "a-b-c", "r"),
    ("https://gitlab.com/o/r", "gitlab", "o", "r"),
    ("https://gitlab.com/kapt/open-source/djangocms-faq", "gitlab", "kapt/open-source", "djangocms-faq"),
    ("https://gitlab.com/a/b/c/d", "gitlab", "a/b/c", "d"),
    ("https://gitlab.com/g/sub/p/-/tree/main/src", "gitlab", "g/sub", "p"),
    ("https://gitlab.com/g/p/-/issues/3", "gitlab", "g", "p"),
    ("https://gitlab.com/g/p/tree/master", "gitlab", "g", "p"),
    ("https://gitlab.com/g/p/wikis/home", "gitlab", "g", "p"),
    ("https://gitlab.com/g/p.git", "gitlab", "g", "p"),
    ("git@gitlab.com:g/sub/p.git", "gitlab", "g/sub", "p"),
    ("https://bitbucket.org/jespern/django-piston/", "bitbucket", "jespern", "django-piston"),
    ("https://bitbucket.org/MrOxiMoron/cmsplugin-news", "bitbucket", "MrOxiMoron", "cmsplugin-news"),
    ("https://bitbucket.org/ws/repo/src/master/", "bitbucket", "ws", "repo"),
    ("git@bitbucket.org:ws/repo.git", "bitbucket", "ws", "repo"),
    ("https://codeberg.org/forgejo/forgejo", "codeberg", "forgejo", "forgejo"),
    ("https://codeberg.org/o/r/src/branch/main", "codeberg", "o", "r"),
]


@pytest.mark.parametrize(("url", "host", "owner", "name"), ACCEPTED, ids=[a[0].strip() for a in ACCEPTED])
def test_accepted_forms(url, host, owner, name):
    ref = parse_repo_url(url)
    assert isinstance(ref, RepoRef), ref
    assert (ref.host, ref.owner, ref.name) == (host, owner, name)
    assert ref.key == f"{host}:{owner}/{name}".lower()


def test_key_is_lower_case_and_stable_across_forms():
    forms = ["https://github.com/Foo/Bar", "git@github.com:foo/bar.git", "http://www.GitHub.com/FOO/bar/",
             "https://github.com/foo/BAR/tree/main", "github.com/foo/bar#x"]
    assert {parse_repo_url(f).key for f in forms} == {"github:foo/bar"}
    assert parse_repo_url("https://gitlab.com/Group/Sub/Proj").key == "gitlab:group/sub/proj"


REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
    ("not a url", "malformed"),
    ("https://github.com/o/r with space", "malformed"),
    ("https://github.com\\@evil.io/o/r", "malformed"),
    ("https://github.com/o/r\x00", "malformed"),
    ("https://github.com:99999/o/r", "malformed"),
    ("just-a-name", "malformed"),
    ("file:///etc/passwd", "unsupported_scheme"),
    ("file:/etc/passwd", "unsupported_scheme"),
    ("ftp://github.com/o/r", "unsupported_scheme"),
    ("javascript:alert(1)", "unsupported_scheme"),
    ("svn+ssh://github.com/o/r", "unsupported_scheme"),
    ("https://user:pass@github.com/o/r", "userinfo"),
    ("https://evil.io@github.com/o/r", "userinfo"),
    ("https://token@github.com/o/r", "userinfo"),
    ("root@github.com:o/r.git", "userinfo"),
    ("https://github.com:8443/o/r", "port"),
    ("http://github.com:443/o/r", "port"),
    ("github.com:8080/o/r", "port"),
    ("http://127.0.0.1/o/r", "ip_address"),
    ("http://127.0.0.1:8000/api/v3/repos/o/r", "port"),
    ("http://10.0.0.1/o/r", "ip_address"),
    ("http://[::1]/o/r", "ip_address"),
    ("http://169.254.169.254/latest/meta-data", "ip_address"),
    ("http://localhost/o/r", "localhost"),
    ("http://github.localhost/o/r", "localhost"),
    ("http://git.corp.internal/o/r", "localhost"),
    ("https://github.com.evil.io/o/r", "lookalike_host"),
    ("https://githubb.com/o/r", "lookalike_host"),
    ("https://my-github.com/o/r", "lookalike_host"),
    ("https://evilgithub.com/o/r", "lookalike_host"),
    ("https://gitlab.example.org/o/r", "lookalike_host"),
    ("https://g\u0456thub.com/o/r", "lookalike_host"),  # Cyrillic i
    ("https://gist.github.com/o/0123456789abcdef", "not_repository_host"),
    ("https://raw.githubusercontent.com/o/r/main/setup.py", "not_repository_host"),
    ("https://api.github.com/repos/o/r", "not_repository_host"),
    ("http://benoitc.github.com/dj-webmachine/", "not_repository_host"),
    ("https://o.github.io/r/", "not_repository_host"),
    ("https://o.gitlab.io/r/", "not_repository_host"),
    ("http://code.google.com/p/django-compress/", "dead_host"),
    ("https://django-audit.googlecode.com/hg/", "dead_host"),
    ("https://launchpad.net/django-genshi", "dead_host"),
    ("https://code.launchpad.net/~djfische/rpc4django/main", "dead_host"),
    ("https://sourceforge.net/projects/x/", "dead_host"),
    ("http://gitorious.org/djc-recipe/djc-recipe", "dead_host"),
    ("http://savannah.nongnu.org/projects/dina-project/", "dead_host"),
    ("https://example.com/o/r", "unknown_host"),
    ("http://pypi.python.org/pypi/django-object-permissions", "unknown_host"),
    ("http://hg.piranha.org.ua/byteflow/", "unknown_host"),
    ("https://github.com/", "missing_owner"),
    ("https://github.com", "missing_owner"),
    ("https://github.com/o", "missing_name"),
    ("https://github.com/o/", "missing_name"),
    ("https://gitlab.com/g", "missing_name"),
    ("https://gitlab.com/g/-/tree/x", "missing_name"),
    ("https://gitlab.com/", "missing_owner"),
    ("https://bitbucket.org/ws", "missing_name"),
    ("https://github.com/orgs/django", "reserved_owner"),
    ("https://github.com/settings/profile", "reserved_owner"),
    ("https://github.com/marketplace/actions", "reserved_owner"),
    ("https://github.com/topics/django", "reserved_owner"),
    ("https://github.com/under_score/r", "invalid_owner"),
    ("https://github.com/-leading/r", "invalid_owner"),
    ("https://github.com/" + "a" * 40 + "/r", "invalid_owner"),
    ("https://github.com/o%3Cscript%3E/r", "invalid_owner"),
    ("https://github.com/o/r%20x", "invalid_name"),
    ("https://github.com/o/" + "r" * 101, "invalid_name"),
    ("https://github.com/o/r$", "invalid_name"),
    ("https://github.com/o/..", "path_traversal"),
    ("https://github.com/../../etc/passwd", "path_traversal"),
    ("https://github.com/o/%2e%2e", "path_traversal"),
    ("https://github.com/o/%2E%2E/x", "path_traversal"),
    ("https://github.com/o/.", "path_traversal"),
    ("https://github.com/o%2Fx/r", "path_traversal"),
    ("https://gitlab.com/g/../p", "path_traversal"),
    ("git@github.com:../r.git", "path_traversal"),
]


@pytest.mark.parametrize(("url", "code"), REJECTED, ids=[repr(r[0]) for r in REJECTED])
def test_rejected_with_reason(url, code):
    problem = parse_repo_url(url)
    assert isinstance(problem, RepoProblem), problem
    assert problem.code == code, str(problem)
    assert str(problem).startswith(f"{code}: ") and len(str(problem)) > len(code) + 3
    assert "\n" not in str(problem)


def test_never_raises_on_garbage():
    for value in [b"https://github.com/o/r", 3, [], "https://[", "http://%", "git@:", "://", "https:///o/r",
                  "https://github.com/" + "/" * 1000, "\u202ehttps://github.com/o/r", "https://github.com/o/r" * 500]:
        assert isinstance(parse_repo_url(value), RepoRef | RepoProblem)  # type: ignore[arg-type]


def _codes(urls):
    counts: Counter = Counter()
    for url in urls:
        result = parse_repo_url(url)
        counts["ok" if isinstance(result, RepoRef) else result.code] += 1
    return counts


def test_real_catalogue_2022_every_row_parses_or_has_a_reason(csv_2022, record_property):
    with csv_2022.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert len(rows) == 4896
    counts = _codes(row["dp_repo_url"] for row in rows)
    record_property("parse_counts_2022", dict(counts))
    print(f"\n2022-05 catalogue repo URLs: {dict(counts)}")
    assert sum(counts.values()) == 4896
    # every non-empty URL of the 2022 catalogue is a github.com or gitlab.com repository
    assert counts == {"ok": 4227, "empty": 669}
    # and our host/owner/name agree with the catalogue's own `platform` / `repo_id` columns
    for row in rows:
        ref = parse_repo_url(row["dp_repo_url"])
        if isinstance(ref, RepoRef) and row["repo_id"]:
            assert ref.host == row["platform"]
            assert ref.path.lower() == row["repo_id"].lower()


def test_real_dump_2011_dead_and_odd_urls(dump_2011, record_property):
    data = json.loads(bz2.decompress(dump_2011.read_bytes()))
    urls = [r["fields"]["repo_url"] for r in data if r["model"] == "package.package"]
    counts = _codes(urls)
    record_property("parse_counts_2011", dict(counts))
    print(f"\n2011-03 dump repo URLs: {dict(counts)}")
    assert sum(counts.values()) == len(urls) == 669
    assert counts["ok"] == 591  # 463 github + 128 bitbucket
    assert counts["dead_host"] == 60  # Google Code, Launchpad, Gitorious, Savannah, git.gnome.org
    assert counts["unknown_host"] == 16 and counts["not_repository_host"] == 1 and counts["empty"] == 1


# --- PyPI names --------------------------------------------------------------------------------------

PYPI = [
    ("", None),
    ("   ", None),
    ("django-stronghold", "django-stronghold"),
    ("Django_Stronghold", "django-stronghold"),
    ("zope.interface", "zope-interface"),
    ("a", "a"),
    ("http://pypi.python.org/pypi/django-stronghold", "django-stronghold"),
    ("http://pypi.python.org/pypi/django-stronghold/", "django-stronghold"),
    ("http://pypi.python.org/pypi/Adjax/1.0.1", "adjax"),
    ("http://pypi.python.org/pypi/django-gtileoverlay/1.0.0.final", "django-gtileoverlay"),
    ("https://pypi.python.org/pypi/django-cms", "django-cms"),
    ("https://pypi.org/project/Django-CMS/", "django-cms"),
    ("https://pypi.org/project/django-cms/3.11.0/", "django-cms"),
    ("https://pypi.org/project/django-cms", "django-cms"),
    ("https://pypi.org/simple/django-cms/", "django-cms"),
    ("pypi.python.org/simple/Django_CMS/", "django-cms"),
    ("pypi.org/project/django-cms/", "django-cms"),
    ("https://www.pypi.org/project/django-cms/", "django-cms"),
    ("http://pypi.python.org/django-cms", "django-cms"),
    ("https://pypi.org/pypi/django-cms/json", "django-cms"),
    ("http://pypi.python.org/pypi?:action=display&name=django_nav", "django-nav"),
    ("https://pypi.org/project/x/#description", "x"),
    ("  https://pypi.org/project/x/  ", "x"),
    ("http://pypi.python.org/pypi/Sphene%20Community%20Tools", None),
    ("https://pypi.org/project/-bad-/", None),
    ("https://pypi.org/project/bad_/", None),
    ("not a name", None),
    ("https://example.com/project/x/", None),
    ("https://pypi.org.evil.io/project/x/", None),
    ("https://user@pypi.org/project/x/", None),
    ("https://pypi.org:8443/project/x/", None),
    ("file:///pypi/x", None),
    ("https://github.com/o/r", None),
    ("https://pypi.org/project/../../x/", None),
]


@pytest.mark.parametrize(("value", "expected"), PYPI, ids=[repr(p[0]) for p in PYPI])
def test_pypi_forms(value, expected):
    assert parse_pypi(value)[0] == expected
    # a statement about PyPI (even an unusable one) never falls back to the slug
    assert parse_pypi(value, fallback_slug="the-slug")[0] == expected


def test_pypi_fallback_rules():
    assert parse_pypi("", fallback_slug="django-foo")[0] is None  # "" means: not on PyPI
    assert parse_pypi(None, fallback_slug="Django_Foo")[0] == "django-foo"  # nothing said: the slug
    assert parse_pypi(None)[0] is None
    assert parse_pypi(None, fallback_slug="not valid!")[0] is None
    assert parse_pypi("http://pypi.python.org/pypi/", fallback_slug="foo")[0] == "foo"  # PyPI, no name
    assert parse_pypi("https://pypi.org/", fallback_slug="foo")[0] == "foo"
    assert parse_pypi("http://pypi.python.org/pypi/", fallback_slug=None)[0] is None
    assert parse_pypi("https://example.com/x", fallback_slug="foo")[0] is None
    assert parse_pypi("https://pypi.org/project/-bad-/", fallback_slug="foo")[0] is None


PYPI_PROBLEMS = [
    ("http://pypi.python.org/pypi/Sphene%20Community%20Tools", "invalid_name"),
    ("https://pypi.org/project/-bad-/", "invalid_name"),
    ("not a name", "malformed"),
    ("https://example.com/project/x/", "not_pypi_host"),
    ("https://pypi.org.evil.io/project/x/", "not_pypi_host"),
    ("http://127.0.0.1:8000/pypi/x/json", "not_pypi_host"),
    ("https://user@pypi.org/project/x/", "userinfo"),
    ("https://pypi.org:8443/project/x/", "port"),
    ("file:///pypi/x", "unsupported_scheme"),
    ("https://github.com/o/r", "not_pypi_host"),
    ("https://pypi.org/project/../../x/", "invalid_name"),
    ("https://pypi.org/help/faq/", "not_a_project_page"),
]


@pytest.mark.parametrize(("value", "code"), PYPI_PROBLEMS, ids=[p[0] for p in PYPI_PROBLEMS])
def test_an_unusable_pypi_url_says_why(value, code):
    name, problem = parse_pypi(value, fallback_slug="the-slug")
    assert name is None
    assert problem is not None and problem.code == code, problem
    assert str(problem).startswith(f"{code}: ") and "\n" not in str(problem)


@pytest.mark.parametrize("value", ["", None, "django-foo", "https://pypi.org/project/django-foo/",
                                   "http://pypi.python.org/pypi/"])
def test_a_usable_or_absent_pypi_url_has_no_problem(value):
    assert parse_pypi(value, fallback_slug="django-foo") == ((None if value == "" else "django-foo"), None)


def test_pep503_normalisation():
    assert parse_pypi("Foo.Bar__baz--Qux") == ("foo-bar-baz-qux", None)
    assert parse_pypi("https://pypi.org/project/Foo.Bar__baz--Qux/") == ("foo-bar-baz-qux", None)


def test_real_dump_2011_pypi_urls(dump_2011):
    data = json.loads(bz2.decompress(dump_2011.read_bytes()))
    packages = [r["fields"] for r in data if r["model"] == "package.package"]
    names = [parse_pypi(p["pypi_url"])[0] for p in packages]
    given = [p for p in packages if p["pypi_url"]]
    parsed = [n for n in names if n]
    assert len(given) == 396
    # all but "Sphene Community Tools" (not a valid name) and two bare ".../pypi/" links
    assert len(parsed) == 393
    assert "django-nav" in parsed and "adjax" in parsed and "satchmo" in parsed
