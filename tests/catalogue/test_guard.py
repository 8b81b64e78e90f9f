"""judge_catalogue: complete and plausible reads are applied; incomplete, empty or shrunk ones are not."""

from __future__ import annotations

import pytest

from assets.catalogue.guard import judge_catalogue
from assets.catalogue.readers import CatalogueRecords
from pipelines.settings import CATALOGUE_MAX_SHRINK, Settings, SettingsError
from pipelines.sources.djangopackages import CatalogueIncomplete, CatalogueUnreachable


def _records(packages: int, counts: dict[str, int] | None = None) -> CatalogueRecords:
    return CatalogueRecords([{"id": 1}], [], [{"id": i} for i in range(packages)], "test", "api", counts or {})


def test_first_run_and_small_changes_are_applied():
    assert judge_catalogue(_records(240), 0).kind == "first"
    verdict = judge_catalogue(_records(216), 240)  # -10%: the default limit, inclusive
    assert (verdict.apply, verdict.kind) == (True, "ok")
    assert verdict.line == "catalogue: 216 packages (-24 since the stored 240)"
    assert judge_catalogue(_records(5000), 240).apply  # growth is never refused


def test_big_shrink_is_refused_unless_accepted():
    verdict = judge_catalogue(_records(215), 240)
    assert (verdict.apply, verdict.kind, verdict.overridable) == (False, "shrink", True)
    assert verdict.line.startswith("catalogue refused: 215 packages where 240 are stored (-10.42%, more than "
                                   "PULSE_CATALOGUE_MAX_SHRINK=0.1)")
    assert "--accept-catalogue-change" in verdict.line
    accepted = judge_catalogue(_records(215), 240, accept=True)
    assert (accepted.apply, accepted.kind) == (True, "accepted")
    assert judge_catalogue(_records(120), 240, 0.5).apply
    assert not judge_catalogue(_records(239), 240, 0.0).apply


@pytest.mark.parametrize("accept", [False, True])
def test_empty_is_never_applied(accept):
    for stored in (0, 240):
        verdict = judge_catalogue(_records(0), stored, accept=accept)
        assert (verdict.apply, verdict.kind, verdict.overridable) == (False, "empty", False)
        assert verdict.line == "catalogue refused: 0 packages (an empty catalogue is never applied)"
    unusable = judge_catalogue(_records(3), 240, packages=0, accept=accept)
    assert unusable.kind == "empty" and "3 package records, none usable" in unusable.line


@pytest.mark.parametrize("accept", [False, True])
def test_incomplete_is_never_applied(accept):
    failed = judge_catalogue(CatalogueIncomplete("catalogue packages read stopped after 100 of 240 records: "
                                                 "HTTP 500"), 240, accept=accept)
    assert (failed.apply, failed.kind) == (False, "incomplete")
    assert failed.line == ("catalogue refused, incomplete read: catalogue packages read stopped after 100 of "
                           "240 records: HTTP 500")
    unreachable = judge_catalogue(CatalogueUnreachable("catalogue unreachable: x"), 0, accept=accept)
    assert (unreachable.apply, unreachable.kind) == (False, "incomplete")
    assert unreachable.line == "catalogue refused, read failed: catalogue unreachable: x"
    short = judge_catalogue(_records(216, {"packages": 240, "categories": 1}), 240, accept=accept)
    assert (short.apply, short.kind) == (False, "incomplete")
    assert short.line == ("catalogue refused, incomplete read: packages: 216 records read where the API "
                          "announced count 240")
    assert not judge_catalogue(_records(240, {"packages": 240, "categories": 4}), 240, accept=accept).apply


def test_max_shrink_setting():
    base = {"PULSE_HOME": "/tmp/x"}
    assert Settings.from_mapping(base).catalogue_max_shrink == CATALOGUE_MAX_SHRINK == 0.10
    assert Settings.from_mapping({**base, "PULSE_CATALOGUE_MAX_SHRINK": "0.25"}).catalogue_max_shrink == 0.25
    for bad in ("10%", "1.5", "-0.1"):
        with pytest.raises(SettingsError, match="PULSE_CATALOGUE_MAX_SHRINK"):
            Settings.from_mapping({**base, "PULSE_CATALOGUE_MAX_SHRINK": bad})
    with pytest.raises(ValueError, match="fraction"):
        judge_catalogue(_records(1), 1, 2.0)
