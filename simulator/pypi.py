"""PyPI: the JSON API (``/pypi/<name>/json``) and the Simple API (PEP 503 / PEP 691 / PEP 792)."""

from __future__ import annotations

import html
from urllib.parse import quote

from simulator.core import Resp, SimState, json_resp
from simulator.model import Package, sha1
from simulator.world import pep503

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"


def not_found() -> Resp:
    return json_resp({"message": "Not Found"}, 404, content_type="application/json")


def _serial(p: Package) -> int:
    return 20_000_000 + p.id * 17 + len(p.slug)


def _files(p: Package, rel) -> list[dict]:
    norm = (p.pypi_name or p.slug).replace("-", "_").replace(".", "_").lower()
    out = []
    kinds = [("bdist_wheel", "py3", f"{norm}-{rel.version}-py3-none-any.whl")] if rel.files > 1 else []
    kinds.append(("sdist", "source", f"{norm}-{rel.version}.tar.gz"))
    for i, (ptype, pyver, fname) in enumerate(kinds):
        digest = sha1(p.id, rel.version, fname)
        sha256 = (digest + sha1(fname, "b"))[:64]
        when = rel.upload_time.replace(microsecond=(rel.upload_time.microsecond + i * 4111) % 1_000_000)
        out.append({
            "comment_text": "",
            "digests": {"blake2b_256": (sha1(fname, "c") + digest)[:64], "md5": digest[:32],
                        "sha256": sha256},
            "downloads": -1, "filename": fname, "has_sig": False, "md5_digest": digest[:32],
            "packagetype": ptype, "python_version": pyver, "requires_python": rel.requires_python,
            "size": 10_000 + int(digest[:5], 16) % 400_000,
            "upload_time": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "upload_time_iso_8601": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "url": f"https://files.pythonhosted.org/packages/{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}/{fname}",
            "yanked": rel.yanked,
            "yanked_reason": "Broken release, use the previous version" if rel.yanked else None,
        })
    return out


def project_json(state: SimState, p: Package) -> dict:
    w = state.world
    latest = w.pypi_latest(p.id)
    assert latest is not None
    name = p.pypi_name or p.slug
    classifiers = [
        "Development Status :: 7 - Inactive" if p.inactive_classifier else
        ("Development Status :: 5 - Production/Stable" if p.id % 3 else "Development Status :: 4 - Beta"),
        "Environment :: Web Environment", "Framework :: Django", "Framework :: Django :: 4.2",
        "Intended Audience :: Developers", "License :: OSI Approved :: MIT License",
        "Operating System :: OS Independent", "Programming Language :: Python :: 3",
    ]
    project_urls: dict[str, str] | None = None
    home = f"https://github.com/{p.full_name}" if p.host == "github" else p.repo_url.strip()
    if not p.project_urls_null:
        project_urls = {"Homepage": home or f"https://pypi.org/project/{name}/"}
        if p.docs_in_project_urls:
            key = "Documentation" if p.id % 4 else "Docs"
            project_urls[key] = w.documentation_url(p) or ""
        if p.host == "github":
            project_urls["Source"] = home
            project_urls["Tracker"] = f"{home}/issues"
    info = {
        "author": "Example Author", "author_email": f"{p.owner.split('/')[0].lower()}@example.org",
        "bugtrack_url": None, "classifiers": sorted(classifiers),
        "description": f"{name}\n{'=' * len(name)}\n\n{p.description or ''}\n",
        "description_content_type": "text/x-rst", "docs_url": p.docs_url, "download_url": "",
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1}, "dynamic": None,
        "home_page": home or None, "keywords": "django", "license": "MIT",
        "license_expression": None, "license_files": None, "maintainer": "", "maintainer_email": "",
        "name": name, "package_url": f"https://pypi.org/project/{name}/", "platform": None,
        "project_url": f"https://pypi.org/project/{name}/", "project_urls": project_urls,
        "provides_extra": None, "release_url": f"https://pypi.org/project/{name}/{latest.version}/",
        "requires_dist": ["Django>=3.2"], "requires_python": latest.requires_python,
        "summary": p.description or "", "version": latest.version, "yanked": latest.yanked,
        "yanked_reason": None,
    }
    # real PyPI lists releases by version string (so "1.10.0" comes before "1.9.2")
    releases = {rel.version: _files(p, rel) for rel in sorted(w.releases(p.id), key=lambda r: r.version)}
    return {"info": info, "last_serial": _serial(p), "releases": releases,
            "urls": releases[latest.version], "vulnerabilities": list(w.vulnerabilities(p.id))}


# Warehouse's _CORS_HEADERS (legacy/api/json.py), on every JSON API answer, redirects included
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type, If-Match, If-Modified-Since, If-None-Match, "
                                    "If-Unmodified-Since",
    "Access-Control-Allow-Methods": "GET",
    "Access-Control-Max-Age": "86400",
    "Access-Control-Expose-Headers": "X-PyPI-Last-Serial",
}


def display_name(p: Package) -> str:
    """The project's name as registered (``info.name``), e.g. ``Django``, ``django_foo``, ``zope.interface``."""
    return p.pypi_name or p.slug


def pypi_json(state: SimState, base: str, name: str, slash: bool = False) -> Resp:
    """``/pypi/<name>/json`` like Warehouse's ``json_project``.

    The project is found by its PEP 503 normalised name; a request that does not spell the project's
    display name exactly (``/pypi/django/json`` for ``Django``), or ends with a slash, gets a 301 to
    ``/pypi/<display name>/json`` (a path, as ``request.current_route_path`` gives). The exact display
    name answers 200.
    """
    p = state.world.find_pypi(name)
    if p is None or p.pypi_status != "ok":
        return not_found()
    shown = display_name(p)
    if name != shown or slash:
        return Resp(301, b"", {"Location": f"/pypi/{quote(shown, safe='')}/json", **CORS}, None)
    resp = json_resp(project_json(state, p), etag="strong", content_type="application/json")
    resp.headers["X-PyPI-Last-Serial"] = str(_serial(p))
    resp.headers["Cache-Control"] = "max-age=900, public"
    resp.headers.update(CORS)
    return resp


def simple(state: SimState, base: str, name: str, accept: str) -> Resp:
    norm = pep503(name)
    p = state.world.find_pypi(name)
    if p is None or p.pypi_status not in ("ok", "quarantined"):
        return Resp(404, b"404 Not Found", {}, "text/plain")
    if name != norm:
        return Resp(301, b"", {"Location": f"{base}/simple/{norm}/"}, None)
    status = {"status": p.simple_status}
    if p.simple_status == "archived":
        status["reason"] = "The maintainers archived this project."
    elif p.simple_status == "quarantined":
        status["reason"] = "Quarantined by PyPI administrators pending review."
    files = []
    versions = []
    if p.simple_status != "quarantined":
        for rel in state.world.releases(p.id):
            versions.append(rel.version)
            for f in _files(p, rel):
                files.append({
                    "filename": f["filename"], "url": f["url"], "hashes": {"sha256": f["digests"]["sha256"]},
                    "requires-python": f["requires_python"], "core-metadata": False,
                    "data-dist-info-metadata": False, "size": f["size"],
                    "upload-time": f["upload_time_iso_8601"], "yanked": bool(f["yanked"])
                    and (f["yanked_reason"] or True),
                })
    headers = {"X-PyPI-Last-Serial": str(_serial(p)), "Cache-Control": "max-age=600, public"}
    if "application/vnd.pypi.simple.v1+json" in accept or "application/json" in accept:
        body = {"meta": {"api-version": "1.4", "_last-serial": _serial(p)}, "name": norm,
                "versions": versions, "files": files, "project-status": status}
        resp = json_resp(body, etag="strong", content_type=SIMPLE_JSON)
        resp.headers.update(headers)
        return resp
    links = "\n".join(
        f'    <a href="{html.escape(f["url"])}#sha256={f["hashes"]["sha256"]}"'
        + (f' data-requires-python="{html.escape(f["requires-python"])}"' if f["requires-python"] else "")
        + f'>{html.escape(f["filename"])}</a><br />' for f in files)
    page = (f'<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.4">\n'
            f'    <meta name="pypi:project-status" content="{p.simple_status}">\n'
            f"    <title>Links for {norm}</title>\n  </head>\n  <body>\n    <h1>Links for {norm}</h1>\n"
            f"{links}\n  </body>\n</html>\n")
    resp = Resp(200, page.encode(), headers, SIMPLE_HTML, etag="strong")
    return resp
