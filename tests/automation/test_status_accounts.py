"""`pulse status` names GitHub accounts, not token numbers: a real crawl against the simulator learns
each token's login (`GET /user`, where the simulator's tokens `alice+1` and `alice+2` are one account),
records it under PULSE_HOME/state/accounts/ without the token, and status groups the quota by that
login, online (the simulator's `/rate_limit`) and `--offline` (no request at all). A token the crawl
never saw stays `token #N`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from pipelines.crawler.crawl import run_crawl
from pipelines.sources.http.accounts import known_logins, logins_path, record_logins
from pipelines.sources.http.tuning import Tuning
from pipelines.status import collect, lines
from simulator.github import login_for
from tests.crawl.simworld import sim_settings, world_packages

CRAWLED = ("alice+1", "alice+2", "bob+1")
LATER = "carol+1"  # configured after the crawl: its login is not known yet
FAST = Tuning(retry_base_s=0.005, retry_max_s=0.02, computing_base_s=0.005, computing_max_s=0.02,
              flush_interval_s=0.1, timeout_s=5)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    from simulator.server import start_in_thread

    with start_in_thread(packages=6, seed=3) as server:
        home = tmp_path_factory.mktemp("status-accounts")
        run_crawl(sim_settings(server, home, tokens=CRAWLED), world_packages(server.world), run_id="r1",
                  tuning=FAST)
        yield server, home


def settings_with(server, home, tokens):
    return sim_settings(server, home, tokens=tokens)


def no_token_in(text: str) -> None:
    for token in (*CRAWLED, LATER):
        assert token not in text
    assert "alice" not in text and "bob" not in text and "carol" not in text  # not even the account part


def test_status_shows_quota_per_login_and_token_numbers_only_when_unknown(crawled):
    server, home = crawled
    alice, bob = login_for("alice+1"), login_for("bob+1")
    settings = settings_with(server, home, (*CRAWLED, LATER))
    server.reset_stats()
    status = collect(settings, online=True)
    assert [(a["account"], a["tokens"], a["login_known"]) for a in status["accounts"]] == [
        (alice, 2, True), (bob, 1, True), ("token #4", 1, False)]
    rows = {row["account"]: row for row in status["quota"]}
    assert list(rows) == [alice, bob, "token #4"]
    assert rows[alice]["tokens"] == 2 and rows[bob]["tokens"] == 1
    for row in rows.values():
        assert row["core"]["limit"] > 0 and 0 <= row["core"]["remaining"] <= row["core"]["limit"]
    # the crawl spent alice's and bob's quota (identify, repositories); carol's is untouched
    assert rows["token #4"]["core"]["remaining"] == rows["token #4"]["core"]["limit"]
    assert rows[alice]["core"]["remaining"] < rows[alice]["core"]["limit"]
    # status asks only the free /rate_limit (once per token), never the charged /user
    routes = [e["route"] for e in server.requests()]
    assert routes == ["github.rate_limit"] * 4

    human = "\n".join(lines(status))
    assert f"github accounts: {alice} (2 tokens), {bob} (1 token), token #4 (1 token)" in human
    assert f"quota {alice} (2 tokens): core " in human and f"quota {bob}: core " in human
    assert "quota token #4: core " in human
    no_token_in(human + json.dumps(status))


def test_offline_status_names_the_accounts_without_a_request(crawled, monkeypatch):
    server, home = crawled
    alice, bob = login_for("alice+1"), login_for("bob+1")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PULSE_HOME", str(home))
    monkeypatch.setenv("GITHUB_TOKEN", ",".join(CRAWLED))
    server.reset_stats()
    from pipelines.cli import main

    result = CliRunner().invoke(main, ["status", "--offline", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["quota"] is None
    assert [(a["account"], a["tokens"]) for a in status["accounts"]] == [(alice, 2), (bob, 1)]
    assert all(a["learned"] for a in status["accounts"])
    text = CliRunner().invoke(main, ["status", "--offline"]).output
    assert f"github accounts: {alice} (2 tokens), {bob} (1 token)" in text
    assert "quota: not asked (--offline)" in text
    assert server.requests() == []  # offline: not one request
    no_token_in(result.output + text)


def test_the_record_holds_logins_never_tokens(crawled):
    server, home = crawled
    files = list((home / "state" / "accounts").iterdir())
    assert [f.name for f in files] == [logins_path(home, server.url + "/api/v3").name]
    raw = files[0].read_text()
    no_token_in(raw + files[0].name)
    assert login_for("alice+1") in raw
    assert (files[0].stat().st_mode & 0o777) == 0o600


def test_a_login_learned_before_survives_a_crawl_that_could_not_ask(tmp_path):
    path = tmp_path / "accounts.json"
    one, two = SecretStr("t-one"), SecretStr("t-two")
    record_logins(path, [one, two], ["octo", None], now=1_700_000_000)
    record_logins(path, [one, two], [None, "Other"], now=1_700_000_100)  # /user failed for `one` this time
    assert known_logins(path, [two, one, SecretStr("t-new")]) == [
        ("Other", 1_700_000_100), ("octo", 1_700_000_000), (None, None)]
    assert known_logins(tmp_path / "absent.json", [one]) == [(None, None)]
    path.write_text("not json")
    assert known_logins(path, [one]) == [(None, None)]


def test_without_a_token_the_quota_is_anonymous(crawled, tmp_path):
    server, _ = crawled
    status = collect(settings_with(server, tmp_path, ()), online=True)
    assert status["accounts"] == []
    [row] = status["quota"]
    assert row["account"] == "anonymous" and row["tokens"] == 0 and row["core"]["limit"] > 0
    assert "github accounts" not in "\n".join(lines(status))
