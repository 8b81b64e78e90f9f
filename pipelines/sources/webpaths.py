"""Catalogue repository URLs -> (owner, name): what every repository source's `parse_repo_path` shares.

`assets.catalogue.urls` splits a catalogue `repo_url` into its host and decoded path segments; the
source that owns the host (`Source.web_hosts`) says which owner and name they designate, or why
they designate none, as a `RepoProblem` whose `code` is stable (listed in `assets.catalogue.urls`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RepoProblem:
    """Why a repository URL is not usable: `code` is stable (see `assets.catalogue.urls`)."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def strip_git(name: str) -> str:
    return name[:-4] if name.lower().endswith(".git") and len(name) > 4 else name


def owner_and_name(host: str, segments: list[str], owner_re: re.Pattern, name_re: re.Pattern,
                   reserved: frozenset[str] = frozenset()) -> tuple[str, str] | RepoProblem:
    """The first two segments as owner and repository (`.git` stripped), checked against the host's rules."""
    if not segments:
        return RepoProblem("missing_owner", "no owner in the path")
    owner = segments[0]
    if owner.lower() in reserved:
        return RepoProblem("reserved_owner", f"/{owner} is a {host} page, not an owner")
    if len(segments) < 2:
        return RepoProblem("missing_name", f"no repository after owner {owner!r}")
    name = strip_git(segments[1])
    if not owner_re.fullmatch(owner):
        return RepoProblem("invalid_owner", f"{owner!r} is not a valid {host} owner")
    if not name_re.fullmatch(name) or name in (".", ".."):
        return RepoProblem("invalid_name", f"{name!r} is not a valid {host} repository name")
    return owner, name
