"""The catalogue guard: whether a fresh catalogue read may replace the stored one (pure, no Dagster).

A catalogue read is applied only when it is complete and plausible:

- **complete**: every page answered (a read that failed anywhere, first page or later, is
  `incomplete`: `pipelines.sources.djangopackages` raises rather than return fewer records), and each
  list holds as many records as the `count` its API envelope announced;
- **not empty**: zero packages is never plausible, on a first run too (a site under maintenance, a
  broken proxy or a wrong PULSE_CATALOGUE answers that way; a directory is never legitimately empty);
- **not a big shrink**: it does not hold fewer packages than the stored catalogue by more than
  `max_shrink` (PULSE_CATALOGUE_MAX_SHRINK, a fraction, default 0.10).

`accept=True` (`pulse refresh --accept-catalogue-change`, run config `accept_change`) applies a big
shrink. It never applies an incomplete or an empty read: those say nothing about the catalogue, only
about the site or the network, and applying them would wipe the directory.

The number compared is the packages the transform kept (`catalogue.packages` rows), the same measure
as the stored count; `stored` = 0 means nothing is stored yet (a first run: no shrink to judge).
"""

from __future__ import annotations

from dataclasses import dataclass

from assets.catalogue.readers import CatalogueRecords
from pipelines.settings import CATALOGUE_MAX_SHRINK
from pipelines.sources.djangopackages import CatalogueError, CatalogueIncomplete

LISTS = ("categories", "grids", "packages")


@dataclass(frozen=True)
class Verdict:
    """`apply`: replace the stored catalogue. `kind`: ok | first | accepted (applied), or incomplete |
    empty | shrink (refused). `line`: one line saying what was decided and why."""

    apply: bool
    kind: str
    line: str
    packages: int | None = None  # packages in the new read (None when the read failed)
    stored: int = 0

    @property
    def overridable(self) -> bool:
        """Whether `--accept-catalogue-change` would apply it."""
        return self.kind == "shrink"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def judge_catalogue(new: CatalogueRecords | CatalogueError, stored: int, max_shrink: float = CATALOGUE_MAX_SHRINK,
                    *, packages: int | None = None, accept: bool = False) -> Verdict:
    """Judge a catalogue read against the stored catalogue.

    `new`: the records read, or the `CatalogueError` the read raised. `stored`: packages in the stored
    catalogue (0: none). `packages`: packages the transform kept from `new` (default: its package
    records). `accept`: apply a shrink beyond `max_shrink` (never an incomplete or empty read).
    """
    if not 0.0 <= max_shrink <= 1.0:
        raise ValueError(f"max_shrink must be a fraction within 0..1, not {max_shrink}")
    if isinstance(new, CatalogueIncomplete):
        return Verdict(False, "incomplete", f"catalogue refused, incomplete read: {new}", None, stored)
    if isinstance(new, CatalogueError):  # not even a first page: unreachable or not the API
        return Verdict(False, "incomplete", f"catalogue refused, read failed: {new}", None, stored)
    for name in LISTS:
        announced = new.counts.get(name)
        read = len(getattr(new, name))
        if announced is not None and announced != read:
            return Verdict(False, "incomplete",
                           f"catalogue refused, incomplete read: {name}: {read} records read where the API "
                           f"announced count {announced}", read if name == "packages" else None, stored)
    kept = len(new.packages) if packages is None else packages
    if kept == 0:
        what = f"{len(new.packages)} package records, none usable" if new.packages else "0 packages"
        return Verdict(False, "empty", f"catalogue refused: {what} (an empty catalogue is never applied)",
                       kept, stored)
    if stored <= 0:
        return Verdict(True, "first", f"catalogue: {kept} packages (nothing stored before)", kept, stored)
    shrink = (stored - kept) / stored
    if shrink > max_shrink:
        change = (f"{kept} packages where {stored} are stored (-{_percent(shrink)}, more than "
                  f"PULSE_CATALOGUE_MAX_SHRINK={max_shrink:g})")
        if accept:
            return Verdict(True, "accepted", f"catalogue change accepted: {change}", kept, stored)
        return Verdict(False, "shrink", f"catalogue refused: {change}; if the change is real, run "
                                        "`pulse refresh --accept-catalogue-change`", kept, stored)
    delta = kept - stored
    return Verdict(True, "ok", f"catalogue: {kept} packages ({delta:+d} since the stored {stored})", kept, stored)
