"""The registry of repository hosts besides GitHub, and of package-named upstreams besides PyPI
(``PACKAGE_HOSTS``): one line per host; its simulator module declares the rest.

The world generator, the server's routes, the environment it prints and the fault host names all
iterate over :data:`REPO_HOSTS` (see ``RepoHost`` in :mod:`simulator.model`). This module sits above the
host modules it imports, and they import only lower modules; so the world generator and the fault
parser, which the host modules' answers depend on, get the registry as an argument
(``World(..., hosts=REPO_HOSTS)``, ``parse_faults(spec, BY_NAME)``) from the server and the CLI.
"""

from __future__ import annotations

from simulator import bitbucket, codeberg, gitlab, pypistats
from simulator.model import PackageHost, RepoHost

# In the order the world generator draws a package's host (after GitHub's 81.5%): the order and the
# shares are part of every world (Codeberg's band was cut from GitHub's when it came, hence first).
REPO_HOSTS: tuple[RepoHost, ...] = (
    codeberg.HOST,
    gitlab.HOST,
    bitbucket.HOST,
)
BY_NAME: dict[str, RepoHost] = {h.name: h for h in REPO_HOSTS}

# Upstreams named by a package's PyPI name (besides PyPI itself): routed, in the environment, hit by
# faults and in the sequential baseline like the repository hosts, but not part of the world
PACKAGE_HOSTS: tuple[PackageHost, ...] = (
    pypistats.HOST,
)
PACKAGE_BY_NAME: dict[str, PackageHost] = {h.name: h for h in PACKAGE_HOSTS}
# the host names faults may name besides github, pypi and the catalogue
FAULT_HOST_NAMES: tuple[str, ...] = (*BY_NAME, *PACKAGE_BY_NAME)
