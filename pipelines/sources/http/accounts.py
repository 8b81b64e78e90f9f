"""Which GitHub account each token belongs to, so the tokens of one account share its limits.

GitHub counts a personal access token's requests for the user who owns it (the primary 5,000 an
hour and the secondary points a minute alike), so two tokens of one account are one budget, not two.
`GET /user` with a token answers its `login` (GitHub REST "Get the authenticated user"); the crawl
asks it once per token at the start (`pipelines.sources.github.GitHub.identify`), through the pace
like every other request.

Tokens stay in memory: requests are matched to accounts by a digest of their `Authorization` header,
and what reaches files and logs is the login (`anonymous` without a token, `unidentified` for a
token whose login is not known).

**The logins on disk** (`record_logins` / `known_logins`, for `pulse status`): the crawl writes which
login each configured token answered to `PULSE_HOME/state/accounts/<API host>.json`, so `pulse status`
can show the quota per account without asking the charged `GET /user` itself. A token is found again
there by a salted digest (BLAKE2b keyed with a random per-file salt, 128 bits): it confirms a token one
already holds and tells nothing about it (tokens carry 160+ random bits); never the token, nor a prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from pydantic import SecretStr

from pipelines.sources.http.hosts import netloc
from pipelines.sources.http.pace import ANONYMOUS, UNIDENTIFIED, safe_key


def _digest(authorization: str) -> bytes:
    return hashlib.blake2b(authorization.encode(), digest_size=16).digest()


def bearer(token: SecretStr) -> str:
    """The `Authorization` header value the crawl sends with a token."""
    return f"Bearer {token.get_secret_value()}"


class Accounts:
    """Token -> account key (a GitHub login), for the pace and the quota view."""

    def __init__(self, tokens: Sequence[SecretStr] = (), record: Path | None = None) -> None:
        """`record`: where `save` writes the learned logins (`logins_path`), None: nowhere."""
        self._tokens = tuple(tokens)
        self.record = record
        self._digests = [_digest(bearer(token)) for token in tokens]
        self._logins: list[str | None] = [None] * len(self._digests)
        self._by_digest: dict[bytes, str] = {}

    def __repr__(self) -> str:  # never the tokens, nor their digests
        return f"Accounts({self.logins!r})"

    @property
    def logins(self) -> list[str | None]:
        return list(self._logins)

    def bind(self, index: int, login: str | None) -> None:
        """Token `index` belongs to `login` (None: unknown, it stays `unidentified`)."""
        self._logins[index] = login
        if login:
            self._by_digest[self._digests[index]] = login.lower()
        else:
            self._by_digest.pop(self._digests[index], None)

    def save(self) -> None:
        """The logins learned, to `record` (for `pulse status`); a failure to write is not the crawl's."""
        if self.record is not None and self._tokens:
            with contextlib.suppress(OSError):
                record_logins(self.record, self._tokens, self._logins)

    def key_of(self, index: int | None) -> str:
        """The pace key of token `index` (None: no token)."""
        if index is None or not self._digests:
            return ANONYMOUS
        login = self._logins[index]
        return login.lower() if login else UNIDENTIFIED

    def key(self, authorization: str | None) -> str:
        """The pace key of a request, by its `Authorization` header."""
        if not authorization:
            return ANONYMOUS
        return self._by_digest.get(_digest(authorization), UNIDENTIFIED)


# --- the logins on disk (`pulse status`) --------------------------------------------------------------

ACCOUNTS_DIR = ("state", "accounts")


def logins_path(home: Path | str, api_url: str) -> Path:
    """Where the logins of the tokens used against `api_url` (GitHub's REST base) are kept."""
    return Path(home).joinpath(*ACCOUNTS_DIR) / f"{safe_key(netloc(api_url).replace(':', '_'))}.json"


def _salted(salt: bytes, token: SecretStr) -> str:
    return hashlib.blake2b(token.get_secret_value().encode(), key=salt, digest_size=16).hexdigest()


def _read(path: Path) -> dict:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _salt(data: dict) -> bytes | None:
    """The file's 16-byte salt; None when it is missing or damaged (the file is then started afresh)."""
    try:
        salt = bytes.fromhex(data.get("salt", ""))
    except (TypeError, ValueError):
        return None
    return salt if len(salt) == 16 else None


def record_logins(path: Path, tokens: Sequence[SecretStr], logins: Sequence[str | None],
                  now: float | None = None) -> None:
    """Write which login each token answered (None: not learned this time: a login learned before for
    that token is kept). Tokens no longer configured are dropped. Atomic (several shards may write)."""
    old = _read(path)
    salt = _salt(old)
    if salt is None:
        salt, old = secrets.token_bytes(16), {}
    before = {e.get("digest"): e for e in old.get("tokens", []) if isinstance(e, dict)}
    entries = []
    for token, login in zip(tokens, logins, strict=True):
        digest = _salted(salt, token)
        if login:
            entries.append({"digest": digest, "login": login, "learned": now or time.time()})
        elif isinstance(before.get(digest), dict) and before[digest].get("login"):
            entries.append(before[digest])
        else:
            entries.append({"digest": digest, "login": None, "learned": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps({"salt": salt.hex(), "tokens": entries}, option=orjson.OPT_INDENT_2))
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def known_logins(path: Path, tokens: Sequence[SecretStr]) -> list[tuple[str | None, float | None]]:
    """(login, when it was learned) per token, as the last crawl recorded it; (None, None) for a token
    it did not identify (or when nothing was recorded). Reads only."""
    data = _read(path)
    salt = _salt(data)
    if salt is None:
        return [(None, None)] * len(tokens)
    found = {e.get("digest"): e for e in data.get("tokens", []) if isinstance(e, dict)}
    out: list[tuple[str | None, float | None]] = []
    for token in tokens:
        entry = found.get(_salted(salt, token)) or {}
        login, learned = entry.get("login"), entry.get("learned")
        out.append((login if isinstance(login, str) and login else None,
                    float(learned) if isinstance(learned, int | float) else None))
    return out
