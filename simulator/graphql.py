"""GitHub GraphQL (``/api/graphql``) on graphql-core, over an SDL of the part of GitHub's schema a crawler uses.

graphql-core parses, validates and coerces variables; this module adds what is GitHub's own: its error
wording and shape (HTTP 200, ``errors`` and no ``data`` when the query is refused), the pagination
checks (``first``/``last`` required on a connection asked for nodes, at most 100) and the point cost
(connection requests / 100, rounded, at least 1) charged before the query runs.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    Lexer,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    StringValueNode,
    TokenKind,
    Visitor,
    build_schema,
    execute_sync,
    get_named_type,
    get_operation_ast,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_argument_values, get_variable_values

from simulator import github
from simulator.core import Resp, SimState, json_resp, norm_time
from simulator.model import Package, gh_time

SDL = (Path(__file__).parent / "github.graphql").read_text()


@dataclass
class Obj:
    """A value of a schema object type: which type, and what its resolvers read."""

    type: str
    value: Any


def _object_type(value: Obj, _info: GraphQLResolveInfo, _abstract: Any) -> str:
    return value.type


SCHEMA: GraphQLSchema = build_schema(SDL)
for _name in ("GitObject", "RepositoryOwner"):
    SCHEMA.type_map[_name].resolve_type = _object_type  # type: ignore[attr-defined]


@dataclass
class Ctx:
    state: SimState
    window: Any
    locate: Any
    cost: int = 1
    nodes: int = 0
    errors: list[dict] = field(default_factory=list)


class Refused(Exception):
    """The query is refused before it runs: GitHub answers 200 with ``errors`` and no ``data``."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__(errors[0].get("message") if errors else "")
        self.errors = errors


# ---------------------------------------------------------------------- GitHub's error wording
def _loc(node: Any) -> list[dict]:
    loc = getattr(node, "loc", None)
    if loc is None:
        return [{"line": 1, "column": 1}]
    src = loc.source.get_location(loc.start)
    return [{"line": src.line, "column": src.column}]


def _paths(doc: DocumentNode) -> dict[int, list[str]]:
    """The GitHub ``path`` of every field node: operation (``query`` or ``query Name``), then aliases."""
    out: dict[int, list[str]] = {}

    def walk(sel: SelectionSetNode | None, path: list[str]) -> None:
        for s in sel.selections if sel else ():
            if isinstance(s, FieldNode):
                here = [*path, (s.alias or s.name).value]
                out[id(s)] = here
                if s.selection_set is not None:
                    out[id(s.selection_set)] = here
                walk(s.selection_set, here)
            elif isinstance(s, InlineFragmentNode):
                walk(s.selection_set, path)

    for d in doc.definitions:
        if isinstance(d, OperationDefinitionNode):
            head = d.operation.value + (f" {d.name.value}" if d.name else "")
            walk(d.selection_set, [head])
        elif isinstance(d, FragmentDefinitionNode):
            walk(d.selection_set, [f"fragment {d.name.value}"])
    return out


# graphql-core's message -> (GitHub's message, extensions); groups as named in each pattern
_WORDING: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"Cannot query field '(?P<f>\w+)' on type '(?P<t>\w+)'\."),
     lambda m, n: (f"Field '{m['f']}' doesn't exist on type '{m['t']}'",
                   {"code": "undefinedField", "typeName": m["t"], "fieldName": m["f"]})),
    (re.compile(r"Unknown argument '(?P<a>\w+)' on field '\w+\.(?P<f>\w+)'\."),
     lambda m, n: (f"Field '{m['f']}' doesn't accept argument '{m['a']}'",
                   {"code": "argumentNotAccepted", "name": m["f"], "typeName": "Field", "argumentName": m["a"]})),
    (re.compile(r"Field '(?P<f>\w+)' argument '(?P<a>\w+)' of type '.+' is required, but it was not provided\."),
     lambda m, n: (f"Field '{m['f']}' is missing required arguments: {m['a']}",
                   {"code": "missingRequiredArguments", "className": "Field", "name": m["f"],
                    "arguments": m["a"]})),
    (re.compile(r"Field '(?P<f>\w+)' must not have a selection since type '(?P<t>.+)' has no subfields\."),
     lambda m, n: (f"Selections can't be made on scalars (field '{m['f']}' returns {m['t']} but has selections "
                   f"[{', '.join(_aliases(n))}])",
                   {"code": "selectionMismatch", "nodeName": f"field '{m['f']}'", "typeName": m["t"]})),
    (re.compile(r"Field '(?P<f>\w+)' of type '(?P<t>.+)' must have a selection of subfields\."),
     lambda m, n: (f"Field must have selections (field '{m['f']}' returns {m['t'].strip('!')} but has no "
                   f"selections. Did you mean '{m['f']} {{ ... }}'?)",
                   {"code": "selectionMismatch", "nodeName": f"field '{m['f']}'", "typeName": m["t"].strip("!")})),
    (re.compile(r"Variable '\$(?P<v>\w+)' is not defined(?: by operation '(?P<op>\w+)')?\."),
     lambda m, n: (f"Variable ${m['v']} is used by {m['op'] or 'anonymous query'} but not declared",
                   {"code": "variableNotDefined", "variableName": m["v"]})),
    (re.compile(r"Unknown type '(?P<t>\w+)'\."),
     lambda m, n: (f"No such type {m['t']}, so it can't be a fragment condition",
                   {"code": "undefinedType", "typeName": m["t"]})),
    (re.compile(r"Unknown fragment '(?P<f>\w+)'\."),
     lambda m, n: (f"Fragment {m['f']} was used, but not defined", {"code": "useAndDefineFragment",
                                                                     "fragmentName": m["f"]})),
]


def _aliases(node: Any) -> list[str]:
    sel = node if isinstance(node, SelectionSetNode) else getattr(node, "selection_set", None)
    return [(s.alias or s.name).value for s in sel.selections if isinstance(s, FieldNode)] if sel else []


def _github_error(err: GraphQLError, paths: dict[int, list[str]]) -> dict:
    node = err.nodes[0] if err.nodes else None
    out: dict[str, Any] = {"message": err.message,
                           "locations": [{"line": x.line, "column": x.column} for x in err.locations or []]
                           or [{"line": 1, "column": 1}]}
    if node is not None and id(node) in paths:
        out["path"] = paths[id(node)]
    for pattern, reword in _WORDING:
        m = pattern.match(err.message)
        if m:
            out["message"], out["extensions"] = reword(m, node)
            break
    return out


def _syntax_error(query: str, err: GraphQLSyntaxError) -> dict:
    """GitHub's parser wording: ``Parse error on "<token>" (<KIND>) at [line, column]``."""
    line, col = (err.locations[0].line, err.locations[0].column) if err.locations else (1, 1)
    shown, kind = "end of file", "EOF"
    lexer = Lexer(Source(query))
    try:
        tok = lexer.advance()
        while tok.kind != TokenKind.EOF and tok.end <= (err.positions or [0])[0]:
            tok = lexer.advance()
        if tok.kind != TokenKind.EOF:
            shown, kind = (tok.value if tok.value is not None else tok.kind.value), tok.kind.name
    except GraphQLSyntaxError:
        shown, kind = query[(err.positions or [0])[0]:][:1] or "end of file", "UNKNOWN_CHAR"
    return {"message": f'Parse error on "{shown}" ({kind}) at [{line}, {col}]',
            "locations": [{"line": line, "column": col}]}


def _variable_error(err: GraphQLError, variables: dict, op: OperationDefinitionNode, locate: Any) -> dict:
    m = re.match(r"Variable '\$(\w+)'", err.message)
    types = {d.variable.name.value: print_ast(d.type) for d in op.variable_definitions or ()}
    where = locate(err.nodes[0] if err.nodes else None)
    if not m or m.group(1) not in types:
        return {"message": err.message, "locations": where}
    name = m.group(1)
    return {"message": f"Variable ${name} of type {types[name]} was provided invalid value", "locations": where,
            "extensions": {"value": variables.get(name), "problems": [{"path": [], "explanation": err.message}]}}


# ---------------------------------------------------------------------- GitHub's checks and cost
def _price(ctx_vars: dict, doc: DocumentNode, op: OperationDefinitionNode, paths: dict[int, list[str]],
           locate: Any) -> tuple[int, int]:
    """(cost in points, node count) of a valid query, refusing unbounded or oversized connections.

    GitHub's calculation: each connection asked with ``first``/``last`` is one request per parent
    node it is repeated under; the cost is the requests / 100, rounded, at least 1.
    """
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    requests = 0.0
    nodes = 0

    def walk(parent: GraphQLObjectType | Any, sel: SelectionSetNode, mult: float) -> None:
        nonlocal requests, nodes
        for s in sel.selections:
            if isinstance(s, FragmentSpreadNode):
                frag = frags[s.name.value]
                walk(SCHEMA.type_map[frag.type_condition.name.value], frag.selection_set, mult)
                continue
            if isinstance(s, InlineFragmentNode):
                on = SCHEMA.type_map[s.type_condition.name.value] if s.type_condition else parent
                walk(on, s.selection_set, mult)
                continue
            if s.name.value.startswith("__"):
                continue
            fdef = parent.fields[s.name.value]
            ret = get_named_type(fdef.type)
            if s.selection_set is None:
                continue
            child = mult
            if ret.name.endswith("Connection"):
                args = get_argument_values(fdef, s, ctx_vars)
                wants_nodes = any(isinstance(x, FieldNode) and x.name.value in ("nodes", "edges")
                                  for x in s.selection_set.selections)
                first = args.get("first") or args.get("last")
                where = {"locations": locate(s), "path": paths.get(id(s), [])}
                if wants_nodes and not first:
                    raise Refused([{"message": f"You must provide a `first` or `last` value to properly paginate "
                                               f"the `{s.name.value}` connection.", **where,
                                    "type": "MISSING_PAGINATION_BOUNDARIES"}])
                if first:
                    if first > 100:
                        raise Refused([{"message": f"Requesting {first} records on the `{s.name.value}` connection "
                                                   f"exceeds the `first` limit of 100 records.", **where,
                                        "type": "EXCESSIVE_PAGINATION"}])
                    requests += mult
                    nodes += int(mult * first)
                    child = mult * first
            walk(ret, s.selection_set, child)

    walk(SCHEMA.query_type, op.selection_set, 1.0)
    return max(1, math.floor(requests / 100 + 0.5)), nodes


# ---------------------------------------------------------------------- resolvers
def _query_field(ctx: Ctx, info: GraphQLResolveInfo, args: dict) -> Any:
    name = info.field_name
    if name == "repository":
        return _repository(ctx, info, str(args["owner"]), str(args["name"]), args.get("followRenames"))
    if name == "rateLimit":
        win = ctx.window
        return Obj("RateLimit", {"cost": ctx.cost, "limit": win.limit, "remaining": win.remaining,
                                 "used": win.used, "nodeCount": ctx.nodes,
                                 "resetAt": datetime.fromtimestamp(win.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    return Obj("User", {"login": "pulse-sim-user", "name": "Pulse Simulator", "id": "U_kgDOsim",
                        "url": "https://github.com/pulse-sim-user"})


def _repository(ctx: Ctx, info: GraphQLResolveInfo, owner: str, name: str, follow: bool | None) -> Obj | None:
    p = ctx.state.world.find_github(owner, name)
    where = {"path": list(info.path.as_list()), "locations": ctx.locate(info.field_nodes[0])}
    if p is None or p.status == "deleted" or (p.status == "renamed" and follow is False
                                               and f"{owner}/{name}".lower() != p.full_name.lower()):
        ctx.errors.append({"type": "NOT_FOUND", **where,
                           "message": f"Could not resolve to a Repository with the name '{owner}/{name}'."})
        return None
    if p.status.startswith("blocked"):
        ctx.errors.append({"type": "FORBIDDEN", **where, "message": "Repository access blocked"})
        return None
    return Obj("Repository", p)


def _commit_field(ctx: Ctx, p: Package, idx: int, name: str, args: dict) -> Any:
    w = ctx.state.world
    commits = w.commits(p.id)
    c = commits[idx]
    if name == "history":
        history = commits[idx:]
        since, until = args.get("since"), args.get("until")
        if since:
            history = tuple(x for x in history if gh_time(x.date) >= norm_time(since))
        if until:
            history = tuple(x for x in history if gh_time(x.date) <= norm_time(until))
        n = int(args.get("first") or 0)
        nodes = [Obj("Commit", (p, commits.index(x))) for x in history[:n]]
        return {"totalCount": len(history), "nodes": nodes,
                "pageInfo": {"hasNextPage": len(history) > n, "hasPreviousPage": False,
                             "endCursor": f"{c.sha} {n - 1}" if n else None,
                             "startCursor": f"{c.sha} 0" if n else None}}
    return {
        "oid": c.sha, "abbreviatedOid": c.sha[:7], "committedDate": gh_time(c.date),
        "authoredDate": gh_time(c.authored), "pushedDate": None, "message": c.message,
        "messageHeadline": c.message, "url": f"https://github.com/{p.full_name}/commit/{c.sha}",
    }[name]


def _ref_field(ctx: Ctx, p: Package, name: str) -> Any:
    if name == "name":
        return p.default_branch
    if name == "prefix":
        return "refs/heads/"
    return Obj("Commit", (p, 0)) if ctx.state.world.commits(p.id) else None


def _count(states: list[str] | None, default: tuple[str, ...], by_state: dict[str, int]) -> dict:
    return {"totalCount": sum(n for s, n in by_state.items() if s in (states or default))}


def _repo_field(ctx: Ctx, p: Package, n: str, args: dict) -> Any:
    state = ctx.state
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
    if n == "id":
        return github.node_id("010:Repository", p.repo_id)
    if n == "pushedAt":
        return gh_time(github.pushed_at(state, p))
    if n == "createdAt":
        return gh_time(p.repo_created)
    if n == "updatedAt":
        return gh_time(github.updated_at(state, p))
    if n == "archivedAt":
        return gh_time(github.pushed_at(state, p)) if p.archived else None
    if n == "owner":
        return Obj("User", {"login": p.owner, "id": github.node_id("04:User", github.owner_id(p.owner)),
                            "url": f"https://github.com/{p.owner}"})
    if n == "watchers":
        return {"totalCount": p.subscribers}
    if n == "stargazers":
        return {"totalCount": p.stars}
    if n == "licenseInfo":
        if not p.license:
            return None
        return {"key": p.license[0], "name": p.license[1], "spdxId": p.license[2], "nickname": None,
                "url": f"http://choosealicense.com/licenses/{p.license[0]}/"}
    if n == "primaryLanguage":
        return None if p.status == "empty" else {"name": "Python", "color": "#3572A5"}
    if n == "repositoryTopics":
        first = int(args.get("first") or 0)
        nodes = [{"topic": {"name": t}, "url": f"https://github.com/topics/{t}"} for t in p.topics[:first]]
        return {"totalCount": len(p.topics), "nodes": nodes,
                "edges": [{"node": x, "cursor": f"c{i}"} for i, x in enumerate(nodes)]}
    if n == "defaultBranchRef":
        return None if p.status == "empty" else Obj("Ref", p)
    if n == "latestRelease":
        rel = state.world.gh_latest_release(p.id) if p.status != "empty" else None
        if rel is None:
            return None
        published = gh_time(rel.upload_time)
        return {"tagName": f"v{rel.version}", "name": f"v{rel.version}", "publishedAt": published,
                "createdAt": published, "isPrerelease": False, "isDraft": False, "isLatest": True,
                "url": f"https://github.com/{p.full_name}/releases/tag/v{rel.version}"}
    if n == "issues":
        open_issues = max(0, p.open_issues - p.open_issues // 4)
        return _count(args.get("states"), ("OPEN", "CLOSED"), {"OPEN": open_issues, "CLOSED": p.open_issues * 3})
    if n == "pullRequests":
        return _count(args.get("states"), ("OPEN", "CLOSED", "MERGED"),
                      {"OPEN": p.open_issues // 4, "MERGED": p.open_issues * 2})
    return None  # parent: the simulated repositories are not forks of a served one


def _resolve(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """The one field resolver: plain dicts answer by key, the world's objects by their type's resolver."""
    ctx: Ctx = info.context
    name = info.field_name
    if source is None:
        return _query_field(ctx, info, args)
    if isinstance(source, dict):
        return source.get(name)
    kind, value = source.type, source.value
    if kind == "Repository":
        return _repo_field(ctx, value, name, args)
    if kind == "Ref":
        return _ref_field(ctx, value, name)
    if kind == "Commit":
        return _commit_field(ctx, *value, name, args)
    return value.get(name)


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
    op_name = payload.get("operationName") if isinstance(payload.get("operationName"), str) else None
    try:
        plan, literals = _prepared(query, op_name)
        locate = _Locator(query, plan, literals)
        cost, nodes = _priced(plan, variables, locate)
    except Refused as exc:
        return json_resp({"errors": exc.errors}), 0
    if window.remaining < cost:
        return json_resp({"errors": [{"type": "RATE_LIMITED", "code": "graphql_rate_limit",
                                      "message": "API rate limit already exceeded for user ID 1."}]}), 0
    window.used += cost
    ctx = Ctx(state, window, locate, cost, nodes)
    with _EXECUTING:  # the plan's string literals are this query's until it has run
        for node, text in zip(plan.strings, literals, strict=True):
            node.value = text
        result = execute_sync(SCHEMA, plan.doc, context_value=ctx, variable_values=variables,
                              operation_name=op_name, field_resolver=_resolve)
    body: dict[str, Any] = {"data": result.data}
    errors = ctx.errors + [e.formatted for e in result.errors or []]
    if errors:
        body["errors"] = errors
    return json_resp(body), cost


# ---------------------------------------------------------------------- parsed and validated once per shape
@dataclass
class _Plan:
    """A parsed, validated query whose string literals are filled in per request.

    A crawler sends the same query again and again with other owners and names; parsing and
    validating ~4,000 nodes with graphql-core takes ten times longer than answering them, so a query
    is prepared once per *shape* (its text with the string literals blanked), and each request only
    swaps its literals into the parsed document. Validation does not depend on a literal's content.
    """

    doc: DocumentNode
    op: OperationDefinitionNode
    paths: dict[int, list[str]]
    strings: list[StringValueNode]  # in source order, one per literal of the shape
    starts: list[int]  # where each literal starts in the text the plan was parsed from
    lengths: list[int]  # and its length there
    price: tuple[int, int] | None = None  # (cost, nodes) when the operation takes no variables


_LITERAL = re.compile(r'"(?:\\.|[^"\\\n])*"')
_PLANS: dict[tuple[str, str | None], _Plan] = {}
_PLANS_MAX = 64
_EXECUTING = threading.Lock()


def _shape(query: str) -> tuple[str | None, list[str], list[tuple[int, int]]]:
    """(shape or None when it cannot be cached, decoded literals, (start, length) of each literal)."""
    spans = [(m.start(), m.end() - m.start()) for m in _LITERAL.finditer(query)]
    literals: list[str] = []
    parts: list[str] = []
    prev = 0
    for start, length in spans:
        parts.append(query[prev:start])
        parts.append('""')
        try:
            literals.append(orjson.loads(query[start:start + length]))
        except orjson.JSONDecodeError:  # GraphQL-only escapes (\u{...}): no shortcut
            return None, [], spans
        prev = start + length
    parts.append(query[prev:])
    shape = "".join(parts)
    if "#" in shape or '"""' in query:  # comments or block strings could hide or hold quotes
        return None, [], spans
    return shape, literals, spans


def _prepared(query: str, op_name: str | None) -> tuple[_Plan, list[str]]:
    """The plan for this query's shape (parsed and validated on first sight), and this query's literals."""
    shape, literals, spans = _shape(query)
    key = (shape or query, op_name)
    plan = _PLANS.get(key) if shape is not None else None
    if plan is not None:
        return plan, literals
    try:
        doc = parse(query)
    except GraphQLSyntaxError as exc:
        raise Refused([_syntax_error(query, exc)]) from None
    paths = _paths(doc)
    problems = validate(SCHEMA, doc)
    if problems:
        raise Refused([_github_error(e, paths) for e in problems])
    op = get_operation_ast(doc, op_name)
    if op is None:
        raise Refused([{"message": "An operation name is required" if op_name is None
                        else f'No operation named "{op_name}"', "locations": [{"line": 1, "column": 1}]}])
    if op.operation.value != "query":
        raise Refused([{"message": f"Simulator supports queries only, not {op.operation.value}",
                        "locations": _loc(op)}])
    strings: list[StringValueNode] = []
    visit(doc, _Strings(strings))
    strings.sort(key=lambda n: n.loc.start if n.loc else 0)
    plan = _Plan(doc, op, paths, strings, [a for a, _ in spans], [b for _, b in spans])
    if shape is not None and [n.loc.start for n in strings if n.loc] == plan.starts:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    else:  # literals the shortcut does not see: keep them as parsed
        literals = [n.value for n in strings]
    return plan, literals


class _Strings(Visitor):
    def __init__(self, out: list[StringValueNode]) -> None:
        super().__init__()
        self.out = out

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        self.out.append(node)


class _Locator:
    """GitHub's ``locations`` of a node of a plan, in this request's text (its literals may be longer)."""

    def __init__(self, query: str, plan: _Plan, literals: list[str]) -> None:
        self.query, self.plan, self.literals = query, plan, literals
        self._shift: list[int] | None = None

    def __call__(self, node: Any) -> list[dict]:
        loc = getattr(node, "loc", None)
        if loc is None:
            return [{"line": 1, "column": 1}]
        if self._shift is None:
            starts = [m.start() for m in _LITERAL.finditer(self.query)]
            lengths = [m.end() - m.start() for m in _LITERAL.finditer(self.query)]
            ok = len(starts) == len(self.plan.starts)
            self._shift = [0]
            for i in range(len(self.plan.starts)):
                self._shift.append(self._shift[-1] + (lengths[i] - self.plan.lengths[i] if ok else 0))
        pos = loc.start + self._shift[bisect.bisect_left(self.plan.starts, loc.start)]
        line = self.query.count("\n", 0, pos) + 1
        return [{"line": line, "column": pos - (self.query.rfind("\n", 0, pos) + 1) + 1}]


def _priced(plan: _Plan, variables: dict, locate: _Locator) -> tuple[int, int]:
    """(cost, nodes) of the query with these variables, refusing them when they do not fit their types."""
    if plan.price is not None:
        return plan.price
    op = plan.op
    coerced = get_variable_values(SCHEMA, op.variable_definitions or (), variables)
    if isinstance(coerced, list):
        raise Refused([_variable_error(e, variables, op, locate) for e in coerced])
    price = _price(coerced, plan.doc, op, plan.paths, locate)
    if not op.variable_definitions:
        plan.price = price
    return price
