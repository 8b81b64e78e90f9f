"""The world generator: traits, laziness, distributions."""

from __future__ import annotations

import pytest

from simulator.hosts import REPO_HOSTS
from simulator.world import World


def test_every_trait_exists_in_the_default_world(simulator):
    w = simulator.world
    missing = [t for t in w.traits if not w.select(t, limit=1)]
    assert missing == []
    with pytest.raises(ValueError):
        w.select("no-such-trait")


def test_small_worlds_still_have_the_rare_traits():
    w = World(seed=9, packages=60, hosts=REPO_HOSTS)
    for trait in ("renamed", "deleted", "blocked_dmca", "blocked_tos", "empty", "contributors_too_large",
                  "many_contributors", "gitlab", "bitbucket", "codeberg", "yanked_latest", "prerelease_only",
                  "pypi_quarantined", "pypi_archived", "not_on_pypi", "pypi_only", "repo_only"):
        assert w.select(trait, limit=1), trait


def test_lazy_generation_of_a_big_world():
    w = World(seed=1, packages=100_000, hosts=REPO_HOSTS)
    assert w.package.cache_info().currsize == 0 and w._index is None  # nothing generated up front
    p = w.package(99_999)
    w.commits(99_999)
    w.contributors(99_999)
    assert p.id == 99_999
    assert w.package.cache_info().currsize == 1  # only what was asked for (and its history)
    assert w._index is None
    assert w.package(99_999) is p  # cached
    assert len({w.package(i).slug for i in range(1, 2001)}) == 2000


def test_bots_and_anonymous_contributors(simulator):
    w = simulator.world
    p = w.first("bots", "anonymous_contributors", "healthy")
    kinds = {c["type"] for c in w.contributors(p.id)}
    assert kinds == {"User", "Bot", "Anonymous"}
    record = w.v4_package(p.id, "http://x")
    assert any(x.endswith("[bot]") for x in record["participants"])
    assert not any(x.startswith("anon") for x in record["participants"])


def _world_digest(seed: int, packages: int) -> str:
    """A digest of everything a world serves from: packages, histories, contributors, releases, v4 records, grids."""
    import dataclasses
    import hashlib

    from simulator.gitlab import contributors as gitlab_contributors
    from simulator.world import World

    w = World(seed=seed, packages=packages, hosts=REPO_HOSTS)
    state = type("State", (), {"world": w})()
    h = hashlib.sha256()
    for pid in w.ids():
        p = w.package(pid)
        row = tuple(sorted(x) if isinstance(x, frozenset) else x for x in dataclasses.astuple(p))
        h.update(repr((row, w.commits(pid), w.contributors(pid), w.releases(pid), gitlab_contributors(state, p),
                       w.v4_package(pid, "http://x"))).encode())
    h.update(repr(w.grids()).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(("seed", "digest"),
                         [(1, "4a05b99fec98aef1"), (2, "beab5f0b6b9df457"), (3, "3942e6a010603c15")])
def test_a_seed_gives_the_same_world_as_before(seed, digest):
    """Exports must stay byte-identical on the simulator's world: a change to the generator that moves any
    random draw (or the hosts' registry order, shares, forced traits) changes these digests."""
    assert _world_digest(seed, 250) == digest
