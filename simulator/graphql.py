"""GitHub GraphQL (``/api/graphql``): a small real parser + validator + executor for the subset of the
schema a crawler uses (aliased ``repository(owner:, name:)`` batches and ``rateLimit``).

Unknown fields, arguments, variables and syntax errors are reported like GitHub (HTTP 200 with
``errors`` and no ``data``); missing repositories give ``null`` plus a NOT_FOUND error with its path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from simulator import github
from simulator.core import Resp, SimState, json_resp
from simulator.world import Package, gh_time

# ---------------------------------------------------------------------- lexer / parser
_TOKEN = re.compile(
    r'(?P<ws>[\s,\ufeff]+|#[^\n]*)|(?P<spread>\.\.\.)|(?P<punct>[!$():=@\[\]{}|&])'
    r'|(?P<block>"""(?:\\"""|[^"]|"(?!""))*""")|(?P<str>"(?:\\.|[^"\\\n])*")'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
)


class GraphQLError(Exception):
    def __init__(self, message: str, line: int = 1, col: int = 1, **extra: Any) -> None:
        super().__init__(message)
        self.payload = {"message": message, "locations": [{"line": line, "column": col}], **extra}


@dataclass
class Tok:
    kind: str
    value: str
    line: int
    col: int


def tokenize(src: str) -> list[Tok]:
    out: list[Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise GraphQLError(f'Parse error on "{src[pos]}" at [{line}, {pos - line_start + 1}]',
                               line, pos - line_start + 1)
        kind = m.lastgroup or ""
        text = m.group(0)
        if kind != "ws":
            out.append(Tok(kind, text, line, pos - line_start + 1))
        nl = text.count("\n")
        if nl:
            line += nl
            line_start = pos + text.rfind("\n") + 1
        pos = m.end()
    out.append(Tok("eof", "", line, pos - line_start + 1))
    return out


@dataclass
class Field:
    name: str
    alias: str
    args: dict[str, Any]
    selections: list[Any] | None
    line: int
    col: int


@dataclass
class InlineFragment:
    on: str | None
    selections: list[Any]
    line: int
    col: int


@dataclass
class Spread:
    name: str
    line: int
    col: int


@dataclass
class Var:
    name: str


@dataclass
class Enum:
    value: str


@dataclass
class Operation:
    kind: str
    selections: list[Any]
    var_defs: dict[str, tuple[str, Any]] = field(default_factory=dict)


class Parser:
    def __init__(self, src: str) -> None:
        self.toks = tokenize(src)
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, t: Tok) -> GraphQLError:
        shown = t.value or "end of file"
        return GraphQLError(f'Parse error on "{shown}" ({t.kind.upper()}) at [{t.line}, {t.col}]', t.line, t.col)

    def expect(self, value: str) -> Tok:
        t = self.next()
        if t.value != value or t.kind in ("str", "block"):
            raise self.fail(t)
        return t

    def name(self) -> Tok:
        t = self.next()
        if t.kind != "name":
            raise self.fail(t)
        return t

    def document(self) -> tuple[list[Operation], dict[str, InlineFragment]]:
        ops: list[Operation] = []
        frags: dict[str, InlineFragment] = {}
        while self.peek().kind != "eof":
            t = self.peek()
            if t.value == "{":
                ops.append(Operation("query", self.selection_set()))
            elif t.value in ("query", "mutation", "subscription"):
                self.next()
                if self.peek().kind == "name":
                    self.next()
                var_defs = self.var_defs() if self.peek().value == "(" else {}
                self.directives()
                ops.append(Operation(t.value, self.selection_set(), var_defs))
            elif t.value == "fragment":
                self.next()
                fname = self.name()
                if self.name().value != "on":
                    raise self.fail(self.toks[self.i - 1])
                on = self.name().value
                self.directives()
                frags[fname.value] = InlineFragment(on, self.selection_set(), fname.line, fname.col)
            else:
                raise self.fail(t)
        if not ops:
            raise GraphQLError("No operations in query document", 1, 1)
        return ops, frags

    def var_defs(self) -> dict[str, tuple[str, Any]]:
        self.expect("(")
        out: dict[str, tuple[str, Any]] = {}
        while self.peek().value != ")":
            self.expect("$")
            n = self.name().value
            self.expect(":")
            typ = self.type_ref()
            default = None
            if self.peek().value == "=":
                self.next()
                default = self.value(const=True)
            out[n] = (typ, default)
        self.expect(")")
        return out

    def type_ref(self) -> str:
        if self.peek().value == "[":
            self.next()
            inner = self.type_ref()
            self.expect("]")
            typ = f"[{inner}]"
        else:
            typ = self.name().value
        if self.peek().value == "!":
            self.next()
            typ += "!"
        return typ

    def directives(self) -> None:
        while self.peek().value == "@":
            self.next()
            self.name()
            if self.peek().value == "(":
                self.arguments()

    def selection_set(self) -> list[Any]:
        self.expect("{")
        out: list[Any] = []
        while self.peek().value != "}":
            t = self.peek()
            if t.kind == "spread":
                self.next()
                if self.peek().value == "on":
                    self.next()
                    on = self.name().value
                    self.directives()
                    out.append(InlineFragment(on, self.selection_set(), t.line, t.col))
                elif self.peek().value == "{":
                    out.append(InlineFragment(None, self.selection_set(), t.line, t.col))
                else:
                    n = self.name()
                    self.directives()
                    out.append(Spread(n.value, t.line, t.col))
                continue
            first = self.name()
            alias, fname = first.value, first.value
            if self.peek().value == ":":
                self.next()
                fname = self.name().value
            args = self.arguments() if self.peek().value == "(" else {}
            self.directives()
            sel = self.selection_set() if self.peek().value == "{" else None
            out.append(Field(fname, alias, args, sel, first.line, first.col))
        if not out:
            raise self.fail(self.peek())
        self.expect("}")
        return out

    def arguments(self) -> dict[str, Any]:
        self.expect("(")
        out: dict[str, Any] = {}
        while self.peek().value != ")":
            n = self.name().value
            self.expect(":")
            out[n] = self.value()
        self.expect(")")
        return out

    def value(self, const: bool = False) -> Any:
        t = self.next()
        if t.value == "$" and t.kind == "punct" and not const:
            return Var(self.name().value)
        if t.kind == "num":
            return float(t.value) if any(ch in t.value for ch in ".eE") else int(t.value)
        if t.kind == "str":
            return orjson.loads(t.value)
        if t.kind == "block":
            return t.value[3:-3]
        if t.kind == "name":
            return {"true": True, "false": False, "null": None}.get(t.value, Enum(t.value))
        if t.value == "[":
            items = []
            while self.peek().value != "]":
                items.append(self.value(const))
            self.next()
            return items
        if t.value == "{":
            obj = {}
            while self.peek().value != "}":
                k = self.name().value
                self.expect(":")
                obj[k] = self.value(const)
            self.next()
            return obj
        raise self.fail(t)


# ---------------------------------------------------------------------- schema
# type -> field -> (return type or None for scalars, allowed args, is_connection)
CONN_ARGS = {"first", "last", "after", "before"}
SCHEMA: dict[str, dict[str, tuple[str | None, set[str], bool]]] = {
    "Query": {
        "repository": ("Repository", {"owner", "name", "followRenames"}, False),
        "rateLimit": ("RateLimit", {"dryRun"}, False),
        "viewer": ("User", set(), False),
    },
    "RateLimit": {k: (None, set(), False) for k in ("cost", "limit", "remaining", "resetAt", "used",
                                                     "nodeCount")},
    "User": {"login": (None, set(), False), "name": (None, set(), False), "id": (None, set(), False)},
    "RepositoryOwner": {"login": (None, set(), False), "id": (None, set(), False),
                        "url": (None, set(), False)},
    "Repository": {
        **{k: (None, set(), False) for k in (
            "id", "databaseId", "name", "nameWithOwner", "description", "homepageUrl", "url",
            "stargazerCount", "forkCount", "isArchived", "isFork", "isEmpty", "isDisabled", "isPrivate",
            "isLocked", "isMirror", "isTemplate", "pushedAt", "createdAt", "updatedAt", "archivedAt",
            "diskUsage", "visibility")},
        "owner": ("RepositoryOwner", set(), False),
        "watchers": ("UserConnection", CONN_ARGS, True),
        "stargazers": ("StargazerConnection", CONN_ARGS | {"orderBy"}, True),
        "licenseInfo": ("License", set(), False),
        "primaryLanguage": ("Language", set(), False),
        "repositoryTopics": ("RepositoryTopicConnection", CONN_ARGS, True),
        "defaultBranchRef": ("Ref", set(), False),
        "latestRelease": ("Release", set(), False),
        "issues": ("IssueConnection", CONN_ARGS | {"states", "labels", "orderBy", "filterBy"}, True),
        "pullRequests": ("PullRequestConnection", CONN_ARGS | {"states", "labels", "orderBy",
                                                               "baseRefName", "headRefName"}, True),
        "parent": ("Repository", set(), False),
    },
    "UserConnection": {"totalCount": (None, set(), False)},
    "StargazerConnection": {"totalCount": (None, set(), False)},
    "IssueConnection": {"totalCount": (None, set(), False)},
    "PullRequestConnection": {"totalCount": (None, set(), False)},
    "License": {k: (None, set(), False) for k in ("spdxId", "name", "key", "url", "nickname")},
    "Language": {"name": (None, set(), False), "color": (None, set(), False)},
    "RepositoryTopicConnection": {"totalCount": (None, set(), False),
                                  "nodes": ("RepositoryTopic", set(), False),
                                  "edges": ("RepositoryTopicEdge", set(), False)},
    "RepositoryTopicEdge": {"node": ("RepositoryTopic", set(), False), "cursor": (None, set(), False)},
    "RepositoryTopic": {"topic": ("Topic", set(), False), "url": (None, set(), False)},
    "Topic": {"name": (None, set(), False)},
    "Ref": {"name": (None, set(), False), "prefix": (None, set(), False), "target": ("GitObject", set(), False)},
    "GitObject": {"oid": (None, set(), False), "abbreviatedOid": (None, set(), False)},
    "Commit": {
        **{k: (None, set(), False) for k in ("oid", "abbreviatedOid", "committedDate", "authoredDate",
                                             "pushedDate", "message", "messageHeadline", "url")},
        "history": ("CommitHistoryConnection", CONN_ARGS | {"since", "until", "author", "path"}, True),
    },
    "CommitHistoryConnection": {"totalCount": (None, set(), False), "nodes": ("Commit", set(), False),
                                "pageInfo": ("PageInfo", set(), False)},
    "PageInfo": {k: (None, set(), False) for k in ("hasNextPage", "hasPreviousPage", "endCursor",
                                                   "startCursor")},
    "Release": {k: (None, set(), False) for k in ("tagName", "name", "publishedAt", "createdAt", "url",
                                                  "isPrerelease", "isDraft", "isLatest")},
}
INTERFACES = {"GitObject": {"Commit"}, "RepositoryOwner": {"User", "Organization"}}
SCHEMA["Organization"] = SCHEMA["RepositoryOwner"]
REQUIRED = {("Query", "repository"): ("owner", "name")}


@dataclass
class Ctx:
    state: SimState
    base: str
    variables: dict[str, Any]
    fragments: dict[str, InlineFragment]
    errors: list[dict] = field(default_factory=list)
    requests: float = 0.0
    nodes: int = 0
    window: Any = None
    cost: int = 1


def _arg(ctx: Ctx, v: Any) -> Any:
    if isinstance(v, Var):
        return ctx.variables.get(v.name)
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, list):
        return [_arg(ctx, x) for x in v]
    return v


def _expand(ctx: Ctx, sels: list[Any]) -> list[Any]:
    out = []
    for s in sels:
        if isinstance(s, Spread):
            frag = ctx.fragments.get(s.name)
            if frag is None:
                raise GraphQLError(f"Fragment {s.name} was used, but not defined", s.line, s.col)
            out.append(frag)
        else:
            out.append(s)
    return out


def validate(ctx: Ctx, typ: str, sels: list[Any], path: list[str], mult: float) -> None:
    for s in _expand(ctx, sels):
        if isinstance(s, InlineFragment):
            on = s.on or typ
            if on not in SCHEMA and on not in INTERFACES:
                raise GraphQLError(f"No such type {on}, so it can't be a fragment condition", s.line, s.col,
                                   path=path, extensions={"code": "undefinedType", "typeName": on})
            validate(ctx, on, s.selections, path, mult)
            continue
        if s.name == "__typename":
            continue
        spec = SCHEMA.get(typ, {}).get(s.name)
        if spec is None:
            raise GraphQLError(f"Field '{s.name}' doesn't exist on type '{typ}'", s.line, s.col,
                               path=[*path, s.alias],
                               extensions={"code": "undefinedField", "typeName": typ, "fieldName": s.name})
        ret, allowed, is_conn = spec
        for a in s.args:
            if a not in allowed:
                raise GraphQLError(f"Field '{s.name}' doesn't accept argument '{a}'", s.line, s.col,
                                   path=[*path, s.alias], extensions={
                                       "code": "argumentNotAccepted", "name": s.name, "typeName": "Field",
                                       "argumentName": a})
            val = s.args[a]
            if isinstance(val, Var) and val.name not in ctx.variables and val.name not in ctx.fragments:
                raise GraphQLError(f"Variable ${val.name} is used by anonymous query but not declared",
                                   s.line, s.col, path=[*path, s.alias],
                                   extensions={"code": "variableNotDefined", "variableName": val.name})
        missing = [a for a in REQUIRED.get((typ, s.name), ()) if a not in s.args]
        if missing:
            raise GraphQLError(f"Field '{s.name}' is missing required arguments: {', '.join(missing)}",
                               s.line, s.col, path=[*path, s.alias], extensions={
                                   "code": "missingRequiredArguments", "className": "Field",
                                   "name": s.name, "arguments": ", ".join(missing)})
        if ret is None:
            if s.selections:
                raise GraphQLError(f"Selections can't be made on scalars (field '{s.name}' returns "
                                   f"{_scalar_name(s.name)} but has selections [{', '.join(x.alias for x in s.selections if isinstance(x, Field))}])",  # noqa: E501
                                   s.line, s.col, path=[*path, s.alias], extensions={
                                       "code": "selectionMismatch", "nodeName": f"field '{s.name}'",
                                       "typeName": _scalar_name(s.name)})
            continue
        if not s.selections:
            raise GraphQLError(f"Field must have selections (field '{s.name}' returns {ret} but has no "
                               f"selections. Did you mean '{s.name} {{ ... }}'?)", s.line, s.col,
                               path=[*path, s.alias], extensions={
                                   "code": "selectionMismatch", "nodeName": f"field '{s.name}'", "typeName": ret})
        child_mult = mult
        if is_conn:
            wants_nodes = any(isinstance(x, Field) and x.name in ("nodes", "edges") for x in s.selections)
            first = _arg(ctx, s.args.get("first")) or _arg(ctx, s.args.get("last"))
            if wants_nodes and not first:
                raise GraphQLError(f"You must provide a `first` or `last` value to properly paginate the "
                                   f"`{s.name}` connection.", s.line, s.col, path=[*path, s.alias],
                                   type="MISSING_PAGINATION_BOUNDARIES")
            if first:
                if int(first) > 100:
                    raise GraphQLError(f"Requesting {first} records on the `{s.name}` connection exceeds the "
                                       f"`first` limit of 100 records.", s.line, s.col, path=[*path, s.alias],
                                       type="EXCESSIVE_PAGINATION")
                ctx.requests += mult
                ctx.nodes += int(mult * int(first))
                child_mult = mult * int(first)
        validate(ctx, ret, s.selections, [*path, s.alias], child_mult)


def _scalar_name(field_name: str) -> str:
    if field_name.endswith(("Count", "Id")):
        return "Int!"
    if field_name.startswith("is"):
        return "Boolean!"
    if field_name.endswith(("At", "Date")):
        return "DateTime"
    return "String"


# ---------------------------------------------------------------------- execution
@dataclass
class Obj:
    type: str
    value: Any


def _repo_obj(ctx: Ctx, p: Package) -> Obj:
    return Obj("Repository", p)


def resolve(ctx: Ctx, obj: Obj, f: Field) -> Any:
    t, v = obj.type, obj.value
    args = {k: _arg(ctx, a) for k, a in f.args.items()}
    w = ctx.state.world
    if t == "Query":
        if f.name == "repository":
            owner, name = str(args.get("owner") or ""), str(args.get("name") or "")
            p = w.find_github(owner, name)
            if p is None or p.status == "deleted" or (p.status == "renamed" and args.get("followRenames") is False
                                                       and f"{owner}/{name}".lower() != p.full_name.lower()):
                ctx.errors.append({"type": "NOT_FOUND", "path": [f.alias],
                                   "locations": [{"line": f.line, "column": f.col}],
                                   "message": f"Could not resolve to a Repository with the name '{owner}/{name}'."})
                return None
            if p.status.startswith("blocked"):
                ctx.errors.append({"type": "FORBIDDEN", "path": [f.alias],
                                   "locations": [{"line": f.line, "column": f.col}],
                                   "message": "Repository access blocked"})
                return None
            return _repo_obj(ctx, p)
        if f.name == "rateLimit":
            win = ctx.window
            return Obj("RateLimit", {"cost": ctx.cost, "limit": win.limit, "remaining": win.remaining,
                                     "used": win.used, "nodeCount": ctx.nodes,
                                     "resetAt": datetime.fromtimestamp(win.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        if f.name == "viewer":
            return Obj("User", {"login": "pulse-sim-user", "name": "Pulse Simulator", "id": "U_kgDOsim"})
    if t in ("RateLimit", "User", "RepositoryOwner", "Organization", "License", "Language", "Topic",
             "PageInfo", "Release", "UserConnection", "StargazerConnection", "IssueConnection",
             "PullRequestConnection", "Ref_", "RepositoryTopic", "RepositoryTopicEdge",
             "RepositoryTopicConnection"):
        val = v.get(f.name) if isinstance(v, dict) else None
        return val
    if t == "Repository":
        return _repo_field(ctx, v, f, args)
    if t == "Ref":
        if f.name == "name":
            return v.default_branch
        if f.name == "prefix":
            return "refs/heads/"
        if f.name == "target":
            commits = w.commits(v.id)
            return Obj("Commit", (v, 0)) if commits else None
    if t == "Commit":
        p, idx = v
        c = w.commits(p.id)[idx]
        if f.name == "history":
            history = w.commits(p.id)[idx:]
            since, until = args.get("since"), args.get("until")
            if since:
                history = tuple(x for x in history if gh_time(x.date) >= _norm_time(since))
            if until:
                history = tuple(x for x in history if gh_time(x.date) <= _norm_time(until))
            n = int(args.get("first") or 0)
            all_commits = w.commits(p.id)
            nodes = [Obj("Commit", (p, all_commits.index(x))) for x in history[:n]]
            return Obj("CommitHistoryConnection", {
                "totalCount": len(history), "nodes": nodes,
                "pageInfo": Obj("PageInfo", {"hasNextPage": len(history) > n, "hasPreviousPage": False,
                                             "endCursor": f"{c.sha} {n - 1}" if n else None,
                                             "startCursor": f"{c.sha} 0" if n else None})})
        return {
            "oid": c.sha, "abbreviatedOid": c.sha[:7], "committedDate": gh_time(c.date),
            "authoredDate": gh_time(c.authored), "pushedDate": None, "message": c.message,
            "messageHeadline": c.message, "url": f"https://github.com/{p.full_name}/commit/{c.sha}",
        }[f.name]
    if t == "CommitHistoryConnection":
        return v[f.name]
    return None


def _norm_time(value: str) -> str:
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return gh_time(dt if dt.tzinfo else dt.replace(tzinfo=UTC)) or str(value)


def _repo_field(ctx: Ctx, p: Package, f: Field, args: dict) -> Any:
    w = ctx.state.world
    n = f.name
    if n in ("id",):
        return github.node_id("010:Repository", p.repo_id)
    simple = {
        "databaseId": p.repo_id, "name": p.name, "nameWithOwner": p.full_name,
        "description": p.description, "homepageUrl": p.homepage or None,
        "url": f"https://github.com/{p.full_name}", "stargazerCount": p.stars, "forkCount": p.forks,
        "isArchived": p.archived, "isFork": p.fork, "isEmpty": p.status == "empty", "isDisabled": False,
        "isPrivate": False, "isLocked": False, "isMirror": False, "isTemplate": False,
        "visibility": "PUBLIC", "diskUsage": 0 if p.status == "empty" else 20 + (p.id * 37) % 9000,
    }
    if n in simple:
        return simple[n]
    if n == "pushedAt":
        return gh_time(github.pushed_at(ctx.state, p))
    if n == "createdAt":
        return gh_time(p.repo_created)
    if n == "updatedAt":
        return gh_time(github.updated_at(ctx.state, p))
    if n == "archivedAt":
        return gh_time(github.pushed_at(ctx.state, p)) if p.archived else None
    if n == "owner":
        return Obj("User", {"login": p.owner, "id": github.node_id("04:User", github.owner_id(p.owner)),
                            "url": f"https://github.com/{p.owner}"})
    if n == "watchers":
        return Obj("UserConnection", {"totalCount": p.subscribers})
    if n == "stargazers":
        return Obj("StargazerConnection", {"totalCount": p.stars})
    if n == "licenseInfo":
        if not p.license:
            return None
        return Obj("License", {"key": p.license[0], "name": p.license[1], "spdxId": p.license[2],
                               "nickname": None, "url": f"http://choosealicense.com/licenses/{p.license[0]}/"})
    if n == "primaryLanguage":
        return None if p.status == "empty" else Obj("Language", {"name": "Python", "color": "#3572A5"})
    if n == "repositoryTopics":
        first = int(args.get("first") or 0)
        nodes = [Obj("RepositoryTopic", {"topic": Obj("Topic", {"name": t}),
                                         "url": f"https://github.com/topics/{t}"}) for t in p.topics[:first]]
        return Obj("RepositoryTopicConnection", {
            "totalCount": len(p.topics), "nodes": nodes,
            "edges": [Obj("RepositoryTopicEdge", {"node": x, "cursor": f"c{i}"}) for i, x in enumerate(nodes)]})
    if n == "defaultBranchRef":
        return None if p.status == "empty" else Obj("Ref", p)
    if n == "latestRelease":
        rel = w.gh_latest_release(p.id) if p.status != "empty" else None
        if rel is None:
            return None
        published = gh_time(rel.upload_time)
        return Obj("Release", {"tagName": f"v{rel.version}", "name": f"v{rel.version}", "publishedAt": published,
                               "createdAt": published, "isPrerelease": False, "isDraft": False,
                               "isLatest": True,
                               "url": f"https://github.com/{p.full_name}/releases/tag/v{rel.version}"})
    if n == "issues":
        states = args.get("states") or ["OPEN", "CLOSED"]
        states = [states] if isinstance(states, str) else states
        open_issues = max(0, p.open_issues - p.open_issues // 4)
        total = (open_issues if "OPEN" in states else 0) + (p.open_issues * 3 if "CLOSED" in states else 0)
        return Obj("IssueConnection", {"totalCount": total})
    if n == "pullRequests":
        states = args.get("states") or ["OPEN", "CLOSED", "MERGED"]
        states = [states] if isinstance(states, str) else states
        open_prs = p.open_issues // 4
        total = (open_prs if "OPEN" in states else 0) + (p.open_issues * 2 if "MERGED" in states else 0)
        return Obj("PullRequestConnection", {"totalCount": total})
    if n == "parent":
        return None
    return None


def execute(ctx: Ctx, obj: Obj, sels: list[Any]) -> dict:
    out: dict[str, Any] = {}
    for s in _expand(ctx, sels):
        if isinstance(s, InlineFragment):
            if s.on is None or s.on == obj.type or obj.type in INTERFACES.get(s.on, ()):
                out.update(execute(ctx, obj, s.selections))
            continue
        if s.name == "__typename":
            out[s.alias] = obj.type
            continue
        val = resolve(ctx, obj, s)
        out[s.alias] = _complete(ctx, val, s)
    return out


def _complete(ctx: Ctx, val: Any, s: Field) -> Any:
    if isinstance(val, Obj):
        return execute(ctx, val, s.selections or [])
    if isinstance(val, list):
        return [_complete(ctx, x, s) for x in val]
    return val


# ---------------------------------------------------------------------- HTTP
async def handle(state: SimState, request: web.Request, token: str | None, window, base: str
                 ) -> tuple[Resp, int]:
    if request.method != "POST":
        return json_resp({"message": "Not Found", "documentation_url": "https://docs.github.com/graphql",
                          "status": "404"}, 404), 0
    if not token:
        return json_resp({"message": "This endpoint requires you to be authenticated.",
                          "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-"
                                               "graphql#authenticating-with-graphql", "status": "401"}, 401), 0
    raw = await request.read()
    try:
        payload = orjson.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError
    except ValueError:
        return json_resp({"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql",
                          "status": "400"}, 400), 0
    query = payload.get("query")
    if not isinstance(query, str):
        return json_resp({"errors": [{"message": "A query attribute must be specified and must be a string."}]}), 0
    variables = payload.get("variables") or {}
    if not isinstance(variables, dict):
        variables = {}
    try:
        ops, frags = Parser(query).document()
        op = ops[0]
        if op.kind != "query":
            raise GraphQLError(f"Simulator supports queries only, not {op.kind}", 1, 1)
        merged = {k: d for k, (_, d) in op.var_defs.items()}
        merged.update({k: v for k, v in variables.items() if k in op.var_defs})
        undeclared = []
        ctx = Ctx(state, base, merged, frags)
        _check_vars(op.selections, frags, set(op.var_defs), undeclared)
        if undeclared:
            raise GraphQLError(f"Variable ${undeclared[0]} is used by anonymous query but not declared", 1, 1,
                               extensions={"code": "variableNotDefined", "variableName": undeclared[0]})
        validate(ctx, "Query", op.selections, ["query"], 1.0)
    except GraphQLError as exc:
        return json_resp({"errors": [exc.payload]}), 0
    cost = max(1, math.floor(ctx.requests / 100 + 0.5))
    ctx.cost = cost
    if window.remaining < cost:
        return json_resp({"errors": [{"type": "RATE_LIMITED", "code": "graphql_rate_limit",
                                      "message": "API rate limit already exceeded for user ID 1."}]}), 0
    window.used += cost
    ctx.window = window
    data = execute(ctx, Obj("Query", None), op.selections)
    body: dict[str, Any] = {"data": data}
    if ctx.errors:
        body["errors"] = ctx.errors
    return json_resp(body), cost


def _check_vars(sels: list[Any], frags: dict, declared: set[str], out: list[str]) -> None:
    for s in sels:
        if isinstance(s, Field):
            for v in s.args.values():
                for leaf in _leaves(v):
                    if isinstance(leaf, Var) and leaf.name not in declared:
                        out.append(leaf.name)
            if s.selections:
                _check_vars(s.selections, frags, declared, out)
        elif isinstance(s, InlineFragment):
            _check_vars(s.selections, frags, declared, out)


def _leaves(v: Any) -> list[Any]:
    if isinstance(v, list):
        return [y for x in v for y in _leaves(x)]
    if isinstance(v, dict):
        return [y for x in v.values() for y in _leaves(x)]
    return [v]
