"""The resources: typed configuration in, and a fake crawler injected in place of the real one."""

from __future__ import annotations

import dagster as dg

from assets.catalogue.assets import catalogue
from assets.core.assets import core_assets
from assets.raw.assets import RAW_KEYS, crawl
from pipelines.resources import CrawlConfig, CrawlerResource, PulseResource, WarehouseResource
from tests.fakes import FakeCrawlerResource
from tests.fixtures.sample import write_sample_catalogue_csv
from warehouse.db import connect_reader


def test_the_crawler_builds_its_settings_from_its_fields_not_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", "http://from-the-environment.invalid")
    crawler = CrawlerResource(home=str(tmp_path), github_tokens=" t1, t2 ,",
                              api_urls={"GITHUB_API_URL": "http://ghe.local/api/v3", "PYPI_URL": "http://pypi.local/"})
    settings = crawler.settings()
    assert settings.raw_dir == tmp_path / "raw"
    assert [t.get_secret_value() for t in settings.github_tokens] == ["t1", "t2"]
    assert "t1" not in repr(settings)
    assert settings.url("github") == "http://ghe.local/api/v3"
    assert settings.github_graphql_url == "http://ghe.local/api/graphql"  # derived, as from the environment
    assert settings.url("pypi") == "http://pypi.local"
    assert settings.url("gitlab") == "https://gitlab.com/api/v4"  # left out: the variable's default
    assert PulseResource(home=str(tmp_path), timezone="Europe/Paris").settings().timezone == "Europe/Paris"
    assert WarehouseResource(home=str(tmp_path)).path() == tmp_path / "warehouse.duckdb"


def test_catalogue_raw_core_with_the_fake_crawler(tmp_path):
    source = write_sample_catalogue_csv(tmp_path / "catalogue.csv")
    home = str(tmp_path / "home")
    resources = {
        "pulse": PulseResource(home=home, catalogue=str(source)),
        "warehouse": WarehouseResource(home=home),
        "crawler": FakeCrawlerResource(home=home, catalogue=str(source)),
    }
    result = dg.materialize(
        [catalogue, crawl, *core_assets], resources=resources,
        run_config=dg.RunConfig(ops={"crawl": CrawlConfig(force=True, time_budget_s=5.0)}),
    )
    assert result.success
    crawled = {e.asset_key: e.metadata for e in result.asset_materializations_for_node("crawl")}
    assert set(crawled) == set(RAW_KEYS.values())
    assert crawled[RAW_KEYS["github"]]["requests"].value > 0
    assert crawled[RAW_KEYS["codeberg"]]["requests"].value > 0
    con = connect_reader(tmp_path / "home" / "warehouse.duckdb")
    try:
        packages = dict(con.execute("SELECT slug, repo_watchers FROM core.packages").fetchall())
        assert set(packages) == {"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"}
        assert packages["alpha"] == packages["beta"] > 0  # one repository, answered by the fake
        assert packages["eta"] == 0  # its repository URL is unusable: never crawled
        stored = con.execute("SELECT count(*) FROM core.releases").fetchall()[0][0]
        assert stored > 0
    finally:
        con.close()


def test_the_crawl_step_refuses_unknown_run_config():
    from dagster._core.errors import DagsterInvalidConfigError

    try:
        dg.materialize([crawl], resources={"crawler": FakeCrawlerResource(), "warehouse": WarehouseResource()},
                       run_config={"ops": {"crawl": {"config": {"forse": True}}}})
    except DagsterInvalidConfigError as exc:
        assert "forse" in str(exc)
    else:
        raise AssertionError("a misspelt crawl option was accepted")
