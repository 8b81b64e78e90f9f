"""Search over a published snapshot, ranked like djangopackages.org's `/api/v4/search/?q=`.

The site answers from Postgres (djangopackages `searchv3`, full-text search plus pg_trgm); we answer
from memory, so its rules are reproduced here, each with where it comes from (djangopackages
`searchv3/search.py` unless said otherwise; the site sets no `SEARCHV3_*` option, so every default
is the one in force):

- Index (`searchv3/models.py` 33-37, `build_search_vector` 50-68): one weighted vector per package
  and grid, `title` weight A, `slug` B, `description` C, `category` and `participants` D, english
  configuration (`PostgreSQLSearchConfig.default`, 27-29). Built like Postgres does: its parser
  (words; a hyphenated word as the compound then its parts; a digits-only part ends the compound or,
  after one word, is a signed integer; dotted names whole: checked against `ts_debug`), english stop
  words (Postgres' `english.stop`), Snowball's english stemmer for words (`english_stem`; the
  `snowballstemmer` package), words with digits or dots kept as they are (`simple`), and `||`
  starting each field after the highest position so far. Fields are indexed as the rows carry them,
  after the serializer's `emojize` (the site indexes the stored text: a ":rocket:" there is a word).
- Blank query (111-115): `q.strip()` empty gives nothing.
- Websearch query (128-130, `websearch_to_tsquery`): words AND-ed, `or` between words, `-word`
  excluded, "quoted phrases" and hyphenated words as phrases (lexemes at consecutive positions).
- Prefix query (132-136): when `3 <= len(q) < 6` and q is `[A-Za-z0-9_-]+`, `q:*` is OR-ed in, so
  "cri" finds "crispy" (its lexeme "crispi"); its lexemes are checked for presence only.
- Rank (138-140): `ts_rank(search_vector, query)`, Postgres' `tsrank.c` with default weights (D 0.1,
  C 0.2, B 0.4, A 1.0) and no normalisation: `calc_rank_or` when the query's top operator is OR or
  it has one item, `calc_rank_and` (pairs of positions of different items, closer is better) when
  it is AND or a phrase; items deduplicated by lexeme (q and q:* are one, the prefix one, as in
  the site's `websearch || prefix` order), float32 steps as in C. Every row is ranked against the
  whole query, matched or not: a typo hit ranks by whatever words of the query it does have.
- Weight boost (142-150): relevance = rank + weight * 0.02 (`SEARCHV3_WEIGHT_BOOST`). Weights are
  0-100, so the boost reaches 2.0, while a title match ranks about 0.67 and a description match
  about 0.12: among matches of the same kind the weight decides, and a description match passes a
  title match when its weight is about 28 points higher.
- Typos (154-171): for queries of 3+ characters, rows whose title or slug is similar to the
  lowercased query also match (`title % q OR slug % q`, pg_trgm's threshold 0.3, and the greater
  similarity >= 0.2), and that similarity is the second sort key. pg_trgm's similarity (shared
  trigrams / trigrams of either string) is reproduced exactly (`TrigramIndex`): rapidfuzz's scorers
  (ratio, token_set_ratio, partial_ratio, WRatio) agree with it too poorly to stand in (at their
  best cut-off they miss 37-66% of the pairs pg_trgm accepts on the benchmark world), and since the
  similarity orders ties, an approximation would reorder pages.
- Order (183-187): relevance descending, similarity descending, title ascending in the database's
  collation (here as en_US orders: case-insensitive first, then lowercase before uppercase).
- Limit (`apiv4/viewsets.py` 28-32): the first 20, a bare list of the serialized rows; the rows come
  from `published_api.search_rows` with every field `SearchV3Serializer` returns.

Checked against the site's SQL on PostgreSQL 15 + pg_trgm (tests/exports/test_search.py keeps the
recorded orders of a small world). Queries are capped at `MAX_QUERY` characters (the site's titles
are at most 100), so a 10 kB query costs what a long one does; answers are cached per query (bounded
LRU) for the snapshot's life.
"""

from __future__ import annotations

import heapq
import math
import re
import struct
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import snowballstemmer

LIMIT = 20                    # apiv4/viewsets.py: SearchV3.objects.search(qr)[:20]
WEIGHT_BOOST = 0.02           # SEARCHV3_WEIGHT_BOOST default
PREFIX_LENGTHS = range(3, 6)  # q_len >= 3 and q_len < 6
FUZZY_MIN_LENGTH = 3          # use_fuzzy and q_len >= 3
# (title % q OR slug % q) AND greatest similarity >= 0.2: pg_trgm's `%` is similarity >= 0.3
# (`pg_trgm.similarity_threshold` default), so the greater of the two must reach 0.3
TRIGRAM_THRESHOLD = 0.3
MAX_QUERY = 200
CACHE_SIZE = 4096
# Postgres' default ts_rank weights, indexed by our field weight code: D, C, B, A
RANK_WEIGHTS = (0.1, 0.2, 0.4, 1.0)
FIELDS = (("title", 3), ("slug", 2), ("description", 1), ("category", 0), ("participants", 0))
_PI2_6 = 1.64493406685

_PREFIX_RE = re.compile(r"\A[A-Za-z0-9_-]+\Z")  # search.py line 19
# Postgres' parser, roughly: dotted names (hosts, files, versions) whole; hyphenated words as the
# compound then each part; other runs of letters and digits as words. "_" and "'" separate words.
_TOKEN_RE = re.compile(r"[^\W_]+(?:\.[^\W_]+)+|[^\W_]+(?:-[^\W_]+)*")
_WORD_RE = re.compile(r"[^\W_]+")  # pg_trgm's words: letters and digits
# Postgres 15 tsearch_data/english.stop
STOP_WORDS = frozenset((
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours", "yourself",
    "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself",
    "they", "them", "their", "theirs", "themselves", "what", "which", "who", "whom", "this", "that",
    "these", "those", "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had",
    "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but", "if", "or", "because", "as",
    "until", "while", "of", "at", "by", "for", "with", "about", "against", "between", "into", "through",
    "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off",
    "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how",
    "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not",
    "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don",
    "should", "now",
))

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65_536)
def _lexeme(word: str) -> str | None:
    """One parser token as the english configuration stores it: tokens with digits or dots (numword,
    int, host, file, version...) go through the `simple` dictionary (kept as they are), words
    through `english_stem` (None for a stop word, else Snowball's stem)."""
    if any(c.isdigit() or c == "." for c in word):
        return word
    if word in STOP_WORDS:
        return None
    return _stemmer.stemWord(word)


def _words(text: str) -> list[str]:
    """The parser's tokens of `text`, lowercased, each taking one position (stop words included).

    Postgres' parser, as `ts_debug` shows it: a hyphenated word ("django-rest-framework") is the
    compound then each part; a part of digits only ends it ("django-foo-2": "django-foo", "django",
    "foo", "2") and right after a single word is a signed integer ("admin-45": "admin", "-45");
    dotted names ("django.contrib.auth", "v2.0") stay whole.
    """
    out: list[str] = []
    for match in _TOKEN_RE.finditer(text.lower()):
        token = match.group()
        if "-" not in token:
            out.append(token)
            continue
        group: list[str] = []
        for part in token.split("-"):
            if not part.isdigit():
                group.append(part)
                continue
            if len(group) == 1:
                out.append(group[0])
                out.append(f"-{part}")
            else:
                _compound(group, out)
                out.append(part)
            group = []
        _compound(group, out)
    return out


@lru_cache(maxsize=8192)
def _field_lexemes(text: str) -> tuple[tuple[int, str], ...]:
    """(position, lexeme) of one field as `to_tsvector('english', text)` numbers them (from 1;
    stop words take a position but leave no lexeme). Cached: categories and grids repeat."""
    return tuple((at, lex) for at, word in enumerate(_words(text), start=1) if (lex := _lexeme(word)) is not None)


def _compound(parts: list[str], out: list[str]) -> None:
    if len(parts) > 1:
        out.append("-".join(parts))
    out.extend(parts)


def lexemes(text: str) -> list[str]:
    """The lexemes `to_tsquery('english', text)` would look for (stop words dropped)."""
    return [lex for word in _words(text) if (lex := _lexeme(word)) is not None]


def trigrams(text: str) -> set[str]:
    """pg_trgm's trigrams of `text` (`generate_trgm`): lowercased, each run of letters and digits
    padded with two spaces before and one after, every three consecutive characters, once each."""
    out: set[str] = set()
    for word in _WORD_RE.findall(text.lower()):
        padded = f"  {word} "
        out.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return out


class TrigramIndex:
    """pg_trgm's `similarity(a, b)` of one query against many strings at once: shared trigrams /
    (trigrams of a + trigrams of b - shared), 0 when either has none; float32 like Postgres' `real`.

    The strings' trigrams are an inverted index (trigram -> string numbers), so a query costs one
    `bincount` over the postings of its own trigrams, not one set intersection per string.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        postings: dict[str, list[int]] = {}
        sizes = np.zeros(len(texts), dtype=np.int32)
        for i, text in enumerate(texts):
            grams = trigrams(text)
            sizes[i] = len(grams)
            for gram in grams:
                postings.setdefault(gram, []).append(i)
        self._sizes = sizes
        self._postings = {gram: np.asarray(ids, dtype=np.int32) for gram, ids in postings.items()}

    def similarity(self, query: str) -> np.ndarray:
        grams = trigrams(query)
        hits = [self._postings[g] for g in grams if g in self._postings]
        if not hits:
            return np.zeros(len(self._sizes), dtype=np.float32)
        shared = np.bincount(np.concatenate(hits), minlength=len(self._sizes)).astype(np.float32)
        union = (len(grams) + self._sizes).astype(np.float32) - shared
        return np.divide(shared, union, out=np.zeros_like(shared), where=shared > 0)


# --------------------------------------------------------------------------------------------------
# the query (websearch_to_tsquery + the prefix query)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """One websearch word or quoted phrase: its lexemes, in a row at these relative positions
    (a phrase, `<->`, `<2>` over a stop word); `negated` inverts it; `prefix` is `:*` (then only
    the presence of each lexeme is checked, not the positions)."""

    lexemes: tuple[str, ...]
    offsets: tuple[int, ...]
    negated: bool = False
    prefix: bool = False


def term(text: str, *, negated: bool = False, prefix: bool = False) -> Term | None:
    found = [(at, lex) for at, word in enumerate(_words(text)) if (lex := _lexeme(word)) is not None]
    if not found:
        return None
    first = found[0][0]
    return Term(tuple(lex for _, lex in found), tuple(at - first for at, _ in found), negated, prefix)


@dataclass(frozen=True)
class Query:
    """An OR of AND-clauses of terms, and whether ts_rank would use `calc_rank_and` for it."""

    clauses: tuple[tuple[Term, ...], ...]
    ranks_and: bool


_CHUNK_RE = re.compile(r'"([^"]*)"?|(\S+)')


def parse_query(q: str) -> Query:
    """`websearch_to_tsquery('english', q)` OR-ed with `to_tsquery('english', q || ':*')` for short
    single tokens (search.py 128-136)."""
    clauses: list[list[Term]] = [[]]
    minus = 0  # "-" before a term negates it; "- x" and "- -x" as websearch_to_tsquery reads them
    for match in _CHUNK_RE.finditer(q):
        phrase, chunk = match.group(1), match.group(2)
        if phrase is None and chunk.lower() == "or":
            if clauses[-1]:
                clauses.append([])
            minus = 0
            continue
        text = phrase
        if phrase is None:
            text = chunk.lstrip("-")
            minus += len(chunk) - len(text)
            if not text:
                continue
        if (found := term(text, negated=minus % 2 == 1)) is not None:
            clauses[-1].append(found)
        minus = 0
    out = [tuple(c) for c in clauses if c]
    items = {lex for clause in out for term in clause for lex in term.lexemes}
    ranks_and = len(out) == 1 and len(items) >= 2 and (len(out[0]) > 1 or len(out[0][0].lexemes) > 1)
    short = len(q) in PREFIX_LENGTHS and _PREFIX_RE.match(q)
    if short and (found := term(q, prefix=True)) is not None:
        out.append((found,))
        ranks_and = False
    return Query(tuple(out), ranks_and)


# --------------------------------------------------------------------------------------------------
# ts_rank (Postgres src/backend/utils/adt/tsrank.c)
# --------------------------------------------------------------------------------------------------

def _f32(x: float) -> float:
    """`x` rounded to float32: Postgres computes ranks in C `float`, and equal-looking ranks that
    differ in their last bit still order rows."""
    return _F32.unpack(_F32.pack(x))[0]


_F32 = struct.Struct("f")
_W32 = tuple(_f32(w) for w in RANK_WEIGHTS)


@lru_cache(maxsize=4096)
def rank_or_entry(weights: tuple[int, ...]) -> float:
    """`calc_rank_or`'s share of one matching word (before the sum over items and the division by
    their count), its occurrences' weight codes in position order; float steps as in C."""
    resj, wjm, jm = 0.0, -1.0, 0
    for j, code in enumerate(weights):
        w = _W32[code]
        resj = _f32(resj + _f32(w / ((j + 1) * (j + 1))))
        if w > wjm:
            wjm, jm = w, j
    return _f32(_f32(wjm + resj) - _f32(wjm / ((jm + 1) * (jm + 1)))) / _PI2_6


@lru_cache(maxsize=128)
def _word_distance(dist: int) -> float:
    if dist > 100:
        return _f32(1e-30)
    return _f32(1.0 / (1.005 + 0.05 * math.exp(_f32(dist) / 1.5 - 2)))


def rank_and(positions: Sequence[Sequence[tuple[int, int]]]) -> float:
    """`calc_rank_and`: each pair of positions of two different items (in the items' sorted order),
    weighted by their distance; `positions[i]` lists (position, weight code) of the row's word
    matching item i, or nothing. Pairs at the same position are skipped, as in Postgres."""
    res = -1.0
    for i in range(1, len(positions)):
        for k in range(i):
            for pos_l, code_l in positions[i]:
                for pos_p, code_p in positions[k]:
                    dist = abs(pos_l - pos_p)
                    if not dist:
                        continue
                    curw = _f32(math.sqrt(_f32(_f32(_W32[code_l] * _W32[code_p]) * _word_distance(dist))))
                    res = curw if res < 0 else _f32(1.0 - (1.0 - res) * (1.0 - curw))
    return res if res >= 0 else _f32(1e-20)


# --------------------------------------------------------------------------------------------------
# the index
# --------------------------------------------------------------------------------------------------

class SearchIndex:
    """The search rows of one snapshot, indexed once; `search(q)` gives the site's first 20 hits.

    Built in about a second for 5,000 packages; a query costs well under 2 ms (see
    `benchmarks/search.py`). The returned dicts are the rows themselves: do not mutate them.
    """

    def __init__(self, rows: Sequence[dict]) -> None:
        self.rows = list(rows)
        n = len(self.rows)
        self._positions: list[dict[str, list[tuple[int, int]]]] = []
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for i, row in enumerate(self.rows):
            vector = self._vector(row)
            self._positions.append(vector)
            for lex, occurrences in vector.items():
                ids, shares = postings.setdefault(lex, ([], []))
                ids.append(i)
                shares.append(rank_or_entry(tuple(code for _, code in occurrences)))
        self._vocabulary = sorted(postings)
        self._postings = {lex: (np.asarray(ids, dtype=np.int64), np.asarray(shares, dtype=np.float64))
                          for lex, (ids, shares) in postings.items()}
        self._weights = np.asarray([_number(row.get("weight")) for row in self.rows], dtype=np.float64)
        titles = [str(row.get("title") or "") for row in self.rows]
        order = sorted(range(n), key=lambda i: (titles[i].casefold(), titles[i].swapcase()))
        self._title_order = np.empty(n, dtype=np.int64)
        self._title_order[order] = np.arange(n)
        self._trigrams = TrigramIndex(titles + [str(row.get("slug") or "") for row in self.rows])
        self._cached = lru_cache(maxsize=CACHE_SIZE)(self._search)

    def search(self, q: str | None) -> list[dict]:
        """The site's hits for `q`, best first, at most LIMIT; [] for a blank query. Cached per
        query (LRU, CACHE_SIZE entries); each call gets its own list."""
        q = q.strip()[:MAX_QUERY].strip() if isinstance(q, str) else ""
        return list(self._cached(q))  # keyed by the capped query: a 10 kB key is never kept

    @staticmethod
    def _vector(row: dict) -> dict[str, list[tuple[int, int]]]:
        """`build_search_vector`: lexeme -> [(position, weight code)]; `||` shifts each field's
        positions by the highest position so far (a trailing stop word takes none)."""
        vector: dict[str, list[tuple[int, int]]] = {}
        offset = 0
        for name, code in FIELDS:
            last = 0
            for at, lex in _field_lexemes(str(row.get(name) or "")):
                vector.setdefault(lex, []).append((offset + at, code))
                last = at
            offset += last
        return vector

    def _rows_with(self, lexeme: str, prefix: bool) -> list[str]:
        if not prefix:
            return [lexeme] if lexeme in self._postings else []
        found = []
        at = bisect_left(self._vocabulary, lexeme)
        while at < len(self._vocabulary) and self._vocabulary[at].startswith(lexeme):
            found.append(self._vocabulary[at])
            at += 1
        return found

    def _term_mask(self, term: Term) -> np.ndarray:
        mask = np.ones(len(self.rows), dtype=bool)
        for lex in term.lexemes:
            hit = np.zeros(len(self.rows), dtype=bool)
            for word in self._rows_with(lex, term.prefix):
                hit[self._postings[word][0]] = True
            mask &= hit
        if len(term.lexemes) > 1 and not term.prefix:
            for i in np.flatnonzero(mask).tolist():
                mask[i] = self._phrase_at(i, term)
        return ~mask if term.negated else mask

    def _phrase_at(self, i: int, term: Term) -> bool:
        """Whether row i has the term's lexemes at its relative positions somewhere (`<->`)."""
        vector = self._positions[i]
        sets = [{pos for pos, _ in vector[lex]} for lex in term.lexemes]
        return any(all(start + off in positions for off, positions in zip(term.offsets, sets, strict=True))
                   for start in sets[0])

    def _search(self, q: str) -> list[dict]:
        q = (q or "").strip()[:MAX_QUERY].strip()
        if not q or not self.rows:
            return []
        n = len(self.rows)
        query = parse_query(q)
        matched = np.zeros(n, dtype=bool)
        for clause in query.clauses:
            clause_mask = np.ones(n, dtype=bool)
            for term in clause:
                clause_mask &= self._term_mask(term)
            matched |= clause_mask
        similarity = np.zeros(n, dtype=np.float32)
        if len(q) >= FUZZY_MIN_LENGTH:
            scores = self._trigrams.similarity(q)
            similarity = np.maximum(scores[:n], scores[n:])
            matched |= similarity >= np.float32(TRIGRAM_THRESHOLD)
        hits = np.flatnonzero(matched)
        if not hits.size:
            return []
        items = _rank_items(query)
        if query.ranks_and:
            hits, rank = self._rank_and(items, hits)
        else:
            rank = self._rank_or(items)[hits]
        relevance = rank.astype(np.float64) + self._weights[hits] * WEIGHT_BOOST
        order = np.lexsort((self._title_order[hits], -similarity[hits], -relevance))[:LIMIT]
        return [self.rows[i] for i in hits[order]]

    def _rank_or(self, items: dict[str, bool]) -> np.ndarray:
        """`calc_rank_or` of every row: the items' shares summed in the items' order (float32 sums,
        as Postgres' `float res`), divided by the item count."""
        rank = np.zeros(len(self.rows), dtype=np.float32)
        if not items:
            return rank
        for lex, prefix in items.items():
            for word in self._rows_with(lex, prefix):
                ids, shares = self._postings[word]
                rank[ids] = (rank[ids].astype(np.float64) + shares).astype(np.float32)
        return (rank.astype(np.float64) / len(items)).astype(np.float32)

    def _rank_and(self, items: dict[str, bool], hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`calc_rank_and` of the hits that can still reach the first page. A row holding fewer than
        two of the items has no pair: its rank is 1e-20 (`res < 0`). The others cost a loop over
        position pairs, so they are taken by weight, highest first, and the loop stops once even a
        perfect rank (1.0) could not lift a row above the LIMIT-th relevance found."""
        present = np.zeros(len(hits), dtype=np.int32)
        for lex in items:
            if lex in self._postings:
                row_has = np.zeros(len(self.rows), dtype=bool)
                row_has[self._postings[lex][0]] = True
                present += row_has[hits]
        lone = hits[present < 2]
        kept, ranks = [lone], [np.full(len(lone), _f32(1e-20), dtype=np.float32)]
        best = heapq.nlargest(LIMIT, (self._weights[lone] * WEIGHT_BOOST).tolist())
        heapq.heapify(best)  # min-heap of the LIMIT best relevances so far
        paired = hits[present >= 2]
        paired = paired[np.argsort(-self._weights[paired], kind="stable")]
        done: list[int] = []
        paired_ranks: list[float] = []
        for i in paired.tolist():
            boost = self._weights[i] * WEIGHT_BOOST
            if len(best) == LIMIT and boost + 1.0 < best[0]:
                break
            vector = self._positions[i]
            rank = rank_and([vector.get(lex, ()) for lex in items])
            done.append(i)
            paired_ranks.append(rank)
            if len(best) < LIMIT:
                heapq.heappush(best, rank + boost)
            elif rank + boost > best[0]:
                heapq.heapreplace(best, rank + boost)
        kept.append(np.asarray(done, dtype=np.int64))
        ranks.append(np.asarray(paired_ranks, dtype=np.float32))
        return np.concatenate(kept), np.concatenate(ranks)


def _number(value: object) -> float:
    """A row's weight; a missing or malformed one counts as 0 (the model's default) instead of
    failing the whole index."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _rank_items(query: Query) -> dict[str, bool]:
    """The query's items as ts_rank sees them (`SortAndUniqItems`): each lexeme once, sorted by its
    bytes; a lexeme both plain and prefix (q and q:*) counts as the prefix item, as it does in the
    site's `websearch || prefix` order (checked on Postgres 15)."""
    items: dict[str, bool] = {}
    for clause in query.clauses:
        for term in clause:
            for lex in term.lexemes:
                items[lex] = items.get(lex, False) or term.prefix
    return {lex: items[lex] for lex in sorted(items, key=lambda lex: lex.encode())}
