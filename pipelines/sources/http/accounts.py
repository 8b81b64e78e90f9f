"""Which GitHub account each token belongs to, so the tokens of one account share its limits.

GitHub counts a personal access token's requests for the user who owns it (the primary 5,000 an
hour and the secondary points a minute alike), so two tokens of one account are one budget, not two.
`GET /user` with a token answers its `login` (GitHub REST "Get the authenticated user"); the crawl
asks it once per token at the start (`pipelines.sources.github.GitHub.identify`), through the pace
like every other request.

Tokens stay in memory: requests are matched to accounts by a digest of their `Authorization` header,
and what reaches files and logs is the login (`anonymous` without a token, `unidentified` for a
token whose login is not known).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import SecretStr

from pipelines.sources.http.pace import ANONYMOUS, UNIDENTIFIED


def _digest(authorization: str) -> bytes:
    return hashlib.blake2b(authorization.encode(), digest_size=16).digest()


def bearer(token: SecretStr) -> str:
    """The `Authorization` header value the crawl sends with a token."""
    return f"Bearer {token.get_secret_value()}"


class Accounts:
    """Token -> account key (a GitHub login), for the pace and the quota view."""

    def __init__(self, tokens: Sequence[SecretStr] = ()) -> None:
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
