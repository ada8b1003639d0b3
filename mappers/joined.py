"""Multi-table business objects: a mapping with joins, subqueries and aggregates, re-read from the source.

Role: an order header with its lines is one business object spread over several tables. Its mapping is
one SELECT whose FROM table is the *root* (the header) and whose other tables -- joined with
``JOIN ... ON``, or read in correlated subqueries -- are its children; nested lists are JSON arrays
built by the source (``json_agg(json_build_object(...))`` in PostgreSQL, ``JSON_ARRAYAGG(JSON_OBJECT(
...))`` in MySQL/MariaDB). Unlike a single-table mapping it is not evaluated by the bridge: when any of
its tables changes, the bridge finds the *root keys* (the root table's primary key) the changed rows
belong to and runs the mapping itself on the source for exactly those roots. `compile_joined` plans
this once, at load, without I/O:

- which table is the root, and for every table of the mapping how a change row of it names its roots:
  the equalities of the join conditions and WHERE clauses (``l.oborno = h.oaorno``, or a constant as
  in ``h.oacono = 100``) give each root-key column from a column of that table (`Route`);
- the query run per batch of changes: the mapping's own text, with the root key selected first and
  ``AND <root key> = ANY(%s)`` (PostgreSQL; ``IN (%s, ...)`` for MySQL) added to its WHERE, so the
  source evaluates everything with its own semantics (`JoinedMapping.query`);
- the business key (the CloudEvent subject), which must be computed from the root key alone so that
  a root that is gone still has a subject for its ``<entity>.deleted``: it is compiled with the
  single-table compiler and evaluated by the bridge, for present and deleted roots alike.

`JoinedMapper` turns a batch of journal records into one event per affected root: upserted with the
query's row, or deleted when the query returns nothing for the root (deleted, or outside WHERE).

Failure story: every problem of the mapping is raised at once as `MappingError` with file, line and
column: unknown tables, columns and aliases (with a did-you-mean), derived tables, a table whose rows
cannot name their root, GROUP BY without the root key, a business key that needs more than the root
key, select-list names that are not fields of the entity (also inside a nested JSON object). At run
time, a change whose image lacks the columns naming its root (a key-only before image) and a query
returning more than one row for a root raise `MappingRuntimeError`; source errors come classified
from the reader (`Transient` is retried by the delivery loop).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import orjson
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect as SqlglotDialect
from sqlglot.tokenizer_core import TokenType

from cdc.types import JournalRecord, SinkEvent, parse_sink_event
from mappers.cloudevents import EventWriter
from mappers.compiler import _NONDETERMINISTIC, _REFUSED_CLAUSES, OLD, TYPE_FIELD, _node_position, compile_mapping
from mappers.entities import Entity, EntityError, check_select_list, nested_model, validate
from mappers.errors import MappingError, MappingRuntimeError, Problem, did_you_mean
from mappers.sqltypes import Catalog, Column, Dialect, SqlType, Table
from mappers.values import Encoding, decoder_for, encode_default

__all__ = ["JoinedMapper", "JoinedMapping", "Route", "RowReader", "compile_joined", "is_multi_table"]

log = logging.getLogger(__name__)

# Keys per query: bounded statements, and a batch of 5,000 changes is still a handful of queries.
KEYS_PER_QUERY = 500
RK = "__cdc_rk"

_JSON_ANONYMOUS = {"json_agg", "jsonb_agg", "json_build_object", "jsonb_build_object", "json_build_array",
                   "jsonb_build_array", "to_json", "to_jsonb", "array_to_json", "json_arrayagg", "json_object",
                   "json_array", "json_objectagg"}
_JSON_NODES = (exp.JSONArrayAgg, exp.JSONObject, exp.JSONArray, exp.JSONObjectAgg)
_CLAUSE_ENDS = {TokenType.GROUP_BY, TokenType.HAVING, TokenType.ORDER_BY, TokenType.LIMIT, TokenType.WINDOW,
                TokenType.QUALIFY, TokenType.SEMICOLON, TokenType.FETCH, TokenType.OFFSET}
_PG_CASTS = {"char": "bpchar", "character": "bpchar", "int": "integer", "int4": "integer", "int2": "smallint",
             "int8": "bigint", "decimal": "numeric", "float8": "double precision", "float4": "real",
             "bool": "boolean", "character varying": "varchar", "serial": "integer", "bigserial": "bigint",
             "smallserial": "smallint"}
_KIND_GROUPS = {"char": "string", "text": "string"}


def is_multi_table(stmt: exp.Select) -> bool:
    """Whether a parsed mapping needs the source (joins, GROUP BY, aggregates, subqueries)."""
    if stmt.args.get("joins") or stmt.args.get("group") or stmt.args.get("having"):
        return True
    if any(True for _ in stmt.find_all(exp.AggFunc)):
        return True
    return any(s is not stmt for s in stmt.find_all(exp.Select))


@dataclass(frozen=True, slots=True)
class Part:
    """One root-key column as a change row gives it: a column of the row (decoded), or a constant.

    `only`: for a column the mapping's WHERE binds to a number (``h.oacono = 100``), the one value a
    member can have: a row with another value names no root (it can never be in the mapping)."""

    column: str | None
    value: Any = None
    decode: Callable[[Any], Any] | None = None
    only: int | Decimal | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """How a change row of `table` (bound as `alias` in the mapping) names the root it belongs to."""

    table: Table
    alias: str
    parts: tuple[Part, ...]

    def root_key(self, row: dict[str, Any]) -> tuple[Any, ...] | None:
        """The root key of a row image (SQL values), or None when a part is NULL (no root)."""
        out: list[Any] = []
        for p in self.parts:
            if p.column is None:
                out.append(p.value)
                continue
            v = row.get(p.column)
            if v is None:
                return None
            if p.decode is not None:
                v = p.decode(v)
            if p.only is not None and v != p.only:
                return None
            out.append(v)
        return tuple(out)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(p.column for p in self.parts if p.column is not None)


@dataclass(frozen=True, slots=True)
class OutputField:
    name: str
    line: int
    col: int
    json: bool  # built as JSON by the source (nested lists and objects)


@dataclass(frozen=True, slots=True)
class JoinedMapping:
    """A planned multi-table mapping (see the module docstring). Pure data and functions; no I/O."""

    file: str
    text: str
    dialect: Dialect
    root: Table
    root_key: tuple[str, ...]
    routes: tuple[Route, ...]
    fields: tuple[OutputField, ...]
    key_names: tuple[str, ...]
    subject_values: Callable[[tuple[Any, ...]], tuple[Any, ...]] = field(repr=False)
    fingerprint: str = ""
    head: str = field(default="", repr=False)
    tail: str = field(default="", repr=False)
    key_casts: tuple[str, ...] = ()
    key_refs: tuple[str, ...] = ()
    root_from: str = ""  # the root table with the mapping's qualifier, for queries over the root alone

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def tables(self) -> tuple[Table, ...]:
        seen: dict[str, Table] = {}
        for r in self.routes:
            seen.setdefault(r.table.qualified, r.table)
        return tuple(seen.values())

    def condition(self, n: int) -> str:
        """The root-key condition added to the mapping's WHERE, for `n` keys."""
        refs = self.key_refs
        if self.dialect == "postgres":
            if len(refs) == 1:
                return f"{refs[0]} = ANY(%s::{self.key_casts[0]}[])"
            arrays = ", ".join(f"%s::{c}[]" for c in self.key_casts)
            return f"({', '.join(refs)}) IN (SELECT * FROM unnest({arrays}))"
        if len(refs) == 1:
            return f"{refs[0]} IN ({', '.join(['%s'] * n)})"
        one = "(" + ", ".join(["%s"] * len(refs)) + ")"
        return f"({', '.join(refs)}) IN ({', '.join([one] * n)})"

    def query(self, keys: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
        """The parameterised query re-reading the roots `keys`; its first len(root_key) columns are the
        root key, the others the select list."""
        if self.dialect == "postgres":
            params: list[Any] = [[k[i] for k in keys] for i in range(len(self.root_key))]
        else:
            params = [v for k in keys for v in k]
        return self.head + self.condition(len(keys)) + self.tail, params


# ------------------------------------------------------------------------------------------------ planning


@dataclass(eq=False)
class _Binding:
    node: exp.Table
    table: Table
    qualifier: str      # the name columns use for it: its alias, or the table name
    scope: exp.Select


class _Planner:
    def __init__(self, text: str, catalog: Catalog, file: str) -> None:
        self.text = text
        self.catalog = catalog
        self.dialect: Dialect = catalog.dialect
        self.pg = self.dialect == "postgres"
        self.file = file
        self.problems: list[Problem] = []
        self.bindings: dict[int, list[_Binding]] = {}   # id(select) -> its tables
        self.parent: dict[Any, Any] = {}               # union-find over column terms and constants
        self.consts: dict[Any, Any] = {}
        self.resolved: dict[int, tuple[_Binding, Column]] = {}  # id(column node) -> binding, column
        self.unknown: set[str] = set()  # qualifiers of tables already reported unknown

    def note(self, node: exp.Expr | None, message: str) -> None:
        line, col = _node_position(self.text, node) if node is not None else (1, 1)
        self.problems.append(Problem(self.file, line, col, message))

    def norm(self, ident: exp.Expr | None) -> str:
        if ident is None:
            return ""
        if isinstance(ident, exp.Identifier):
            text = str(ident.this)
            return text if ident.quoted or not self.pg else text.lower()
        return ident.name if not self.pg else ident.name.lower()

    # -- tables --

    def table_of(self, t: exp.Table) -> Table | None:
        schema = self.norm(t.args.get("db")) or None
        name = self.norm(t.args.get("this"))
        found = self.catalog.find(schema, name)
        if not found and not self.pg:
            found = [x for x in self.catalog.tables.values()
                     if x.name.lower() == name.lower() and (schema is None or x.schema.lower() == schema.lower())]
        if len(found) > 1:
            self.note(t, f"table '{name}' is ambiguous: it exists in {', '.join(x.schema for x in found)}; qualify "
                         f"it with its {'schema' if self.pg else 'database'}")
            return None
        if not found:
            label = f"{schema}.{name}" if schema else name
            names = [f"{x.schema}.{x.name}" if schema else x.name for x in self.catalog.tables.values()]
            self.note(t, f"unknown table '{label}'{did_you_mean(label, names)}")
            return None
        return found[0]

    def bind(self, sel: exp.Select, node: exp.Expr, what: str) -> None:
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            self.note(node, f"{what} must name a source table (derived tables and table functions are not "
                            "supported in mappings; use a correlated subquery in the select list)")
            return
        table = self.table_of(node)
        if table is None:
            alias = node.args.get("alias")
            self.unknown.add(self.norm(alias.this) if isinstance(alias, exp.TableAlias) and alias.this is not None
                             else self.norm(node.args.get("this")))
            return
        alias = node.args.get("alias")
        qualifier = self.norm(alias.this) if isinstance(alias, exp.TableAlias) and alias.this is not None \
            else table.name
        if qualifier in (OLD, "new"):
            self.note(node, f"the table alias '{qualifier}' is reserved (old.* reads a previous row image)")
        scope = self.bindings.setdefault(id(sel), [])
        if any(b.qualifier == qualifier for b in scope):
            self.note(node, f"the name '{qualifier}' is used for two tables here: give each its own alias")
        scope.append(_Binding(node, table, qualifier, sel))

    def collect_tables(self, stmt: exp.Select) -> None:
        for sel in stmt.find_all(exp.Select):
            from_ = sel.args.get("from_") or sel.args.get("from")
            if not isinstance(from_, exp.From):
                if sel is stmt:
                    self.note(sel, "a mapping selects FROM its root table")
                continue
            self.bind(sel, from_.this, "FROM")
            for j in sel.args.get("joins") or []:
                if j.args.get("using"):
                    self.note(j, "JOIN ... USING is not supported in mappings: write JOIN ... ON a.x = b.x")
                    continue
                if str(j.args.get("method") or "").upper() == "NATURAL":
                    self.note(j, "NATURAL JOIN is not supported in mappings: write JOIN ... ON a.x = b.x")
                    continue
                if j.args.get("kind") and str(j.args.get("kind")).upper() in ("SEMI", "ANTI"):
                    self.note(j, f"{str(j.args.get('kind')).upper()} JOIN is not supported in mappings")
                    continue
                self.bind(sel, j.this, "JOIN")
            for node in (sel.args.get("laterals") or []):
                self.note(node, "LATERAL is not supported in mappings")

    # -- columns --

    def scopes(self, node: exp.Expr) -> Iterator[exp.Select]:
        current = node.find_ancestor(exp.Select)
        while current is not None:
            yield current
            current = current.find_ancestor(exp.Select)

    def resolve_columns(self, stmt: exp.Select, outputs: set[str]) -> None:
        for col in stmt.find_all(exp.Column):
            if isinstance(col.this, exp.Star):
                continue
            name = self.norm(col.args["this"])
            qual = self.norm(col.args.get("table")) if col.args.get("table") else ""
            if qual == OLD:
                self.note(col, "old.* is not available in a multi-table mapping: the object is re-read from the "
                               "source, which has only the current rows")
                continue
            if col.args.get("db"):
                self.note(col, "qualify columns with the table name or alias only")
                continue
            candidates: list[_Binding] = []
            for sel in self.scopes(col):
                scope = self.bindings.get(id(sel), [])
                candidates = [b for b in scope if b.qualifier == qual] if qual else \
                    [b for b in scope if self.column(b.table, name) is not None]
                if candidates:
                    break
            if not candidates:
                if qual in self.unknown or (not qual and self.unknown):
                    continue  # its table is already reported
                if qual:
                    known = sorted({b.qualifier for s in self.scopes(col) for b in self.bindings.get(id(s), [])})
                    self.note(col, f"unknown table or alias '{qual}' in column reference{did_you_mean(qual, known)}")
                    continue
                if name in outputs and col.find_ancestor(exp.Group, exp.Order, exp.Having) is not None:
                    continue  # GROUP BY / ORDER BY may name a select-list column
                every = {c.name for s in self.scopes(col) for b in self.bindings.get(id(s), [])
                         for c in b.table.columns}
                self.note(col, f"unknown column '{name}'{did_you_mean(name, every)}")
                continue
            if len(candidates) > 1:
                self.note(col, f"column '{name}' is ambiguous: it is in "
                               f"{' and '.join(b.qualifier for b in candidates)}; qualify it")
                continue
            b = candidates[0]
            c = self.column(b.table, name)
            if c is None:
                self.note(col, f"unknown column '{name}' in {b.table.qualified}"
                               f"{did_you_mean(name, b.table.by_name)}")
                continue
            self.resolved[id(col)] = (b, c)

    def column(self, table: Table, name: str) -> Column | None:
        c = table.by_name.get(name)
        if c is None and not self.pg:
            c = next((x for x in table.columns if x.name.lower() == name.lower()), None)
        return c

    # -- equalities --

    def find(self, term: Any) -> Any:
        root = term
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        self.parent[term] = root
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb

    def term(self, node: exp.Expr) -> Any:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Column):
            hit = self.resolved.get(id(node))
            return None if hit is None else ("c", id(hit[0]), hit[1].name)
        if isinstance(node, exp.Literal):
            key = ("k", node.is_string, str(node.this))
            self.consts[key] = node
            return key
        return None

    def equalities(self, stmt: exp.Select) -> None:
        """Top-level AND-ed equalities of every JOIN ... ON and WHERE: what each row surely satisfies."""
        for sel in stmt.find_all(exp.Select):
            conditions = [j.args.get("on") for j in sel.args.get("joins") or []]
            where = sel.args.get("where")
            if isinstance(where, exp.Where):
                conditions.append(where.this)
            for cond in conditions:
                for eq in _conjuncts(cond):
                    if isinstance(eq, exp.EQ):
                        a, b = self.term(eq.this), self.term(eq.expression)
                        if a is not None and b is not None:
                            self.union(a, b)

    def members(self, term: Any) -> list[Any]:
        root = self.find(term)
        return [term, *(t for t in {*self.parent, *self.consts} if t != term and self.find(t) == root)]


def _conjuncts(node: exp.Expr | None) -> Iterator[exp.Expr]:
    if node is None:
        return
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


def _const_value(lit: exp.Literal, t: SqlType) -> Any:
    """A literal as a value of the root-key column's type, as the query parameter and key function see it."""
    text = str(lit.this)
    if t.kind == "int":
        return int(text)
    if t.kind == "dec":
        return Decimal(text)
    if t.kind in ("char", "text"):
        return text
    if t.kind == "date" and lit.is_string:
        return date.fromisoformat(text)
    raise ValueError(f"a constant of type {t.show()}")


def _json_expr(node: exp.Expr) -> bool:
    """Whether a select-list expression is built as JSON by the source (a nested list or object)."""
    while True:
        if isinstance(node, exp.Paren | exp.Alias | exp.Coalesce | exp.Filter | exp.Subquery | exp.Order):
            node = node.this
        elif isinstance(node, exp.Select):
            if len(node.expressions) != 1:
                return False
            node = node.expressions[0]
        else:
            break
    if isinstance(node, _JSON_NODES):
        return True
    return isinstance(node, exp.Anonymous) and str(node.this).lower() in _JSON_ANONYMOUS


def _object_keys(node: exp.Expr) -> Iterator[tuple[str, exp.Expr]]:
    """The literal keys of the JSON objects built inside `node` (json_build_object / JSON_OBJECT)."""
    for obj in node.find_all(exp.JSONObject, exp.Anonymous):
        if isinstance(obj, exp.JSONObject):
            for kv in obj.expressions:
                if isinstance(kv, exp.JSONKeyValue) and isinstance(kv.this, exp.Literal) and kv.this.is_string:
                    yield str(kv.this.this), kv.this
        elif str(obj.this).lower() in ("json_build_object", "jsonb_build_object"):
            for k in obj.expressions[0::2]:
                if isinstance(k, exp.Literal) and k.is_string:
                    yield str(k.this), k


def _quote(name: str, dialect: Dialect) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def _pg_cast(t: SqlType) -> str:
    return _PG_CASTS.get(t.name, t.name or "text")


def _templates(text: str, dialect: Dialect, select_cols: str) -> tuple[str, str]:
    """(head, tail) of the re-read query: the mapping's own text with the root key selected first and a
    root-key condition (put between head and tail) AND-ed to its top-level WHERE. Positions come from
    sqlglot's tokenizer (comments and nested parentheses never confuse them); the user's text is kept
    as written, with % doubled for the drivers' %s parameters."""
    tokens = SqlglotDialect.get_or_raise(dialect).tokenize(text)
    depth = 0
    select_end: int | None = None
    where_end: int | None = None
    clause_end: int | None = None
    last_end = 0
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0:
            if tok.token_type == TokenType.SELECT and select_end is None:
                select_end = tok.end + 1
            elif tok.token_type == TokenType.WHERE and where_end is None and clause_end is None:
                where_end = tok.end + 1
            elif tok.token_type in _CLAUSE_ENDS and clause_end is None:
                clause_end = tok.start
        if tok.token_type != TokenType.SEMICOLON and (depth > 0 or clause_end is None or tok.start < clause_end):
            last_end = tok.end + 1
    assert select_end is not None
    if clause_end is None:
        clause_end = last_end

    def esc(s: str) -> str:
        return s.replace("%", "%%")

    head = esc(text[:select_end]) + f" {select_cols},"
    if where_end is not None:
        head += esc(text[select_end:where_end]) + " (" + esc(text[where_end:clause_end].rstrip()) + "\n) AND "
    else:
        head += esc(text[select_end:clause_end]) + "\nWHERE "
    tail = "\n" + esc(text[clause_end:]).rstrip().rstrip(";")
    return head, tail


def compile_joined(text: str, stmt: exp.Select, catalog: Catalog, *, file: str = "<mapping>",
                   key: Sequence[str] = (), entity: type[Entity] | None = None,
                   encoding: Encoding | None = None) -> JoinedMapping:
    """Plan a multi-table mapping (`stmt` is its parsed text); `MappingError` lists every problem.

    `encoding`: how change events encode values (the source connector's modes), to read root keys."""
    enc = encoding or Encoding()
    p = _Planner(text, catalog, file)
    for arg, message in _REFUSED_CLAUSES.items():
        if arg in ("joins", "group", "having"):
            continue
        value = stmt.args.get(arg)
        if value:
            node = value[0] if isinstance(value, list) else value
            p.note(node if isinstance(node, exp.Expr) else stmt, message.replace("a mapping maps each change on its "
                                                                                 "own", "a mapping maps each object"))
    for node in stmt.find_all(*_NONDETERMINISTIC):
        p.note(node, f"{node.sql(dialect=catalog.dialect)} is not deterministic: a mapping must give the same event "
                     "when history is replayed")
    for node in stmt.find_all(exp.Window):
        p.note(node, "window functions are not supported in mappings")
    for node in stmt.find_all(exp.With):
        p.note(node, "WITH: common table expressions are not supported in mappings")
    # output names
    fields: list[tuple[str, exp.Expr, exp.Expr]] = []  # name, item, expression
    seen: set[str] = set()
    for item in stmt.expressions:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            p.note(item, "a multi-table mapping lists its fields: '*' is not allowed")
            continue
        if isinstance(item, exp.Alias):
            name, node = p.norm(item.args["alias"]), item.this
        elif isinstance(item, exp.Column):
            name, node = p.norm(item.args["this"]), item
        else:
            p.note(item, f"give the expression a name with AS (it becomes the event field): "
                         f"{item.sql(dialect=catalog.dialect)[:60]}")
            continue
        if name in seen:
            p.note(item, f"the select list names '{name}' twice")
        if name == TYPE_FIELD:
            p.note(item, f"{TYPE_FIELD} is not available in a multi-table mapping (it needs the previous row image)")
        if name.startswith(RK):
            p.note(item, f"names starting with {RK} are reserved")
        seen.add(name)
        fields.append((name, item, node))
    p.collect_tables(stmt)
    from_ = stmt.args.get("from_") or stmt.args.get("from")
    root_bindings = [b for b in p.bindings.get(id(stmt), []) if isinstance(from_, exp.From) and b.node is from_.this]
    if not root_bindings:
        raise MappingError(sorted(p.problems, key=lambda x: (x.line, x.col)))
    root = root_bindings[0]
    p.resolve_columns(stmt, seen)
    if p.problems:
        raise MappingError(sorted(p.problems, key=lambda x: (x.line, x.col)))
    root_key = root.table.key
    if not root_key:
        p.note(root.node, f"the root table {root.table.qualified} has no primary key: a multi-table mapping "
                          "re-reads its objects by the root's primary key")
        raise MappingError(p.problems)
    # GROUP BY: one row per root
    group = stmt.args.get("group")
    top_aggs = [a for a in stmt.find_all(exp.AggFunc) if a.find_ancestor(exp.Select) is stmt]
    if group is not None or top_aggs:
        grouped = {p.resolved[id(c)][1].name for c in (group.expressions if group is not None else [])
                   if isinstance(c, exp.Column) and id(c) in p.resolved and p.resolved[id(c)][0] is root}
        missing = [k for k in root_key if k not in grouped]
        if missing:
            where = group if group is not None else top_aggs[0]
            p.note(where, f"GROUP BY must list the root key ({', '.join(f'{root.qualifier}.{k}' for k in root_key)}): "
                          f"missing {', '.join(missing)}")
    # routes: how each table's rows name their root
    p.equalities(stmt)
    routes: list[Route] = []
    for scope in p.bindings.values():
        for b in scope:
            parts: list[Part] = []
            unnamed: list[str] = []
            for k in root_key:
                rk_col = root.table.by_name[k]
                members = p.members(("c", id(root), k))
                own = [m for m in members if m[0] == "c" and m[1] == id(b)]
                consts = [p.consts[m] for m in members if m[0] == "k"]
                if own:
                    c = rk_col if b is root else b.table.by_name[own[0][2]]
                    only = None
                    if consts and c.type.kind in ("int", "dec") and not consts[0].is_string:
                        with contextlib.suppress(ValueError, ArithmeticError):
                            only = _const_value(consts[0], c.type)
                    if b is root:
                        parts.append(Part(c.name, decode=decoder_for(c.type, catalog.dialect, enc), only=only))
                        continue
                    kinds = {_KIND_GROUPS.get(c.type.kind, c.type.kind), _KIND_GROUPS.get(rk_col.type.kind,
                                                                                           rk_col.type.kind)}
                    if len(kinds) > 1:
                        p.note(b.node, f"{b.qualifier}.{c.name} ({c.type.show()}) names the root's {k} "
                                       f"({rk_col.type.show()}): the types must match")
                    parts.append(Part(c.name, decode=decoder_for(c.type, catalog.dialect, enc), only=only))
                elif consts:
                    try:
                        parts.append(Part(None, value=_const_value(consts[0], rk_col.type)))
                    except (ValueError, ArithmeticError):
                        p.note(consts[0], f"{root.qualifier}.{k} = {consts[0].sql(dialect=catalog.dialect)}: "
                                          f"a constant of type {rk_col.type.show()} cannot name roots here; "
                                          f"join {b.qualifier} on it instead")
                else:
                    unnamed.append(f"{root.qualifier}.{k}")
            if unnamed:
                p.note(b.node, f"{b.table.qualified} {b.qualifier} cannot find its root: no condition gives the root "
                               f"key {'column' if len(unnamed) == 1 else 'columns'} {', '.join(unnamed)} (add "
                               f"{' AND '.join(f'{b.qualifier}.<column> = {u}' for u in unnamed)} to its JOIN ... ON "
                               "or WHERE)")
            routes.append(Route(b.table, b.qualifier, tuple(parts)))
    # nested entity fields and JSON columns
    json_fields = {name for name, _, node in fields if _json_expr(node)}
    if entity is not None:
        problems = check_select_list(entity, [(name, None, *_node_position(text, item)) for name, item, _ in fields],
                                     catalog.dialect, file, json_arrays=json_fields)
        p.problems += problems
        for name, _, node in fields:
            inner = nested_model(entity, name)
            if inner is None or name not in json_fields:
                continue
            keys = list(_object_keys(node))
            for k, lit in keys:
                if k not in inner.model_fields:
                    p.note(lit, f"{inner.__name__} has no field '{k}'{did_you_mean(k, inner.model_fields)}")
            given = {k for k, _ in keys}
            for fname, info in inner.model_fields.items():
                if keys and info.is_required() and fname not in given:
                    p.note(node, f"{inner.__name__} requires field '{fname}': add it to the JSON object")
    # the business key: computed from the root key alone
    names = [n for n, _, _ in fields]
    key_names = tuple(key) if key else tuple(names[:1])
    subject_fn: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda values: values  # noqa: E731
    key_items = [next((f for f in fields if f[0] == k), None) for k in key_names]
    for k, f in zip(key_names, key_items, strict=True):
        if f is None:
            node0 = fields[0][1] if fields else stmt
            p.note(node0, f"mapper.key names '{k}', which the select list does not{did_you_mean(k, names)}")
    if all(f is not None for f in key_items):
        subject_fn = _subject_function(p, root, root_key, [f for f in key_items if f is not None])
    if p.problems:
        raise MappingError(sorted(p.problems, key=lambda x: (x.line, x.col)))
    # the re-read query
    root_q = _qualifier_sql(root, catalog.dialect)
    refs = tuple(f"{root_q}.{_quote(k, catalog.dialect)}" for k in root_key)
    select_cols = ", ".join(f"{r} AS {RK}{i}" for i, r in enumerate(refs))
    head, tail = _templates(text, catalog.dialect, select_cols)
    normalized = stmt.sql(dialect=catalog.dialect, normalize=True)
    fingerprint = hashlib.blake2b(f"{catalog.dialect}\0{normalized}".encode(), digest_size=8).hexdigest()
    return JoinedMapping(
        file=file, text=text, dialect=catalog.dialect, root=root.table, root_key=root_key, routes=tuple(routes),
        fields=tuple(OutputField(n, *_node_position(text, item), n in json_fields) for n, item, _ in fields),
        key_names=key_names, subject_values=subject_fn, fingerprint=fingerprint, head=head, tail=tail,
        key_casts=tuple(_pg_cast(root.table.by_name[k].type) for k in root_key), key_refs=refs,
        root_from=f"{_quote(root.table.schema, catalog.dialect)}.{_quote(root.table.name, catalog.dialect)} {root_q}")


def _qualifier_sql(b: _Binding, dialect: Dialect) -> str:
    alias = b.node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.this is not None:
        return str(alias.this.sql(dialect=dialect))
    return str(b.node.this.sql(dialect=dialect))


def _subject_function(p: _Planner, root: _Binding, root_key: tuple[str, ...],
                      items: Sequence[tuple[str, exp.Expr, exp.Expr]]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """The business key from root-key values (SQL values), compiled by the single-table compiler."""
    dialect = p.dialect
    select = ", ".join(f"{node.sql(dialect=dialect)} AS {_quote(f'k{i}', dialect)}"
                       for i, (_, _, node) in enumerate(items))
    alias = _quote(root.qualifier, dialect)
    sql = f"SELECT {select} FROM {_quote(root.table.schema, dialect)}.{_quote(root.table.name, dialect)} {alias}"
    allowed = ", ".join(f"{root.qualifier}.{k}" for k in root_key)
    try:
        compiled = compile_mapping(sql, p.catalog, file=p.file, encoding=Encoding(decoded=True))
    except MappingError as e:
        first = e.details[0].message if e.details else str(e)
        p.note(items[0][1], f"the business key must be computed from the root key ({allowed}) alone, so that "
                            f"a deleted object has a subject: {first}")
        return lambda values: values
    extra = [c for c in compiled.source_columns if c not in root_key]
    if extra:
        p.note(items[0][1], f"the business key must be computed from the root key ({allowed}) alone, so that a "
                            f"deleted object has a subject; it reads {', '.join(extra)}")
        return lambda values: values
    project = compiled.project

    def subject(values: tuple[Any, ...]) -> tuple[Any, ...]:
        return project(dict(zip(root_key, values, strict=True)), None)
    return subject


# ------------------------------------------------------------------------------------------------ running


class RowReader(Protocol):
    """Runs the re-read queries on the source (`mappers.reread`): read-only, one snapshot per call."""

    def rows(self, queries: Sequence[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
        """The rows of each query, all read in one read-only transaction."""
        ...

    def check(self, mapping: JoinedMapping) -> tuple[list[Problem], list[SqlType | None]]:
        """At load: the source's own problems with the mapping, or the select list's types."""
        ...

    def close(self) -> None: ...


def _key_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    out = encode_default(v) if isinstance(v, Decimal) else str(v)
    return str(out)


def _loads_json(v: Any) -> Any:
    if isinstance(v, str | bytes):
        return json.loads(v, parse_float=Decimal)
    return v


class JoinedMapper:
    """A planned multi-table mapping bound to its topics, a source reader and its event naming."""

    def __init__(self, mapping: JoinedMapping, *, topics: Mapping[str, tuple[Route, ...]], reader: RowReader,
                 name: str, entity: type[Entity] | None = None, connector: str = "") -> None:
        self.mapping = mapping
        self.routes = dict(topics)
        self.topics = frozenset(topics)
        self.reader = reader
        self.entity = entity
        self.name = entity.entity_name() if entity is not None else name
        self.key_names = mapping.key_names
        self.connector = connector
        self._upserted = f"{self.name}.upserted"
        self._deleted = f"{self.name}.deleted"
        self._writer = EventWriter(connector, mapping.fingerprint, entity.dataschema() if entity is not None else None)
        # MySQL hands JSON results over as text (psycopg parses PostgreSQL's json itself).
        self._json = tuple(i for i, f in enumerate(mapping.fields) if f.json) if mapping.dialect == "mysql" else ()
        self._nkey = len(mapping.root_key)

    def close(self) -> None:
        self.reader.close()

    def preview(self, limit: int, source: dict[str, Any]) -> list[JournalRecord]:
        """The events of the first `limit` roots as the source holds them now (`cdc mapper test --from-db`)."""
        m = self.mapping
        refs = ", ".join(m.key_refs)
        (rows,) = self.reader.rows([(f"SELECT {refs} FROM {m.root_from} ORDER BY {refs} LIMIT %s", [limit])])
        return self.events({tuple(row): (JournalRecord(n, "", None, None), "r", source)
                            for n, row in enumerate(rows, start=1)})

    def map_batch(self, records: Sequence[JournalRecord]) -> list[JournalRecord]:
        """One event per root the batch's changes touch, each with the seq of the root's last change."""
        affected: dict[tuple[Any, ...], tuple[JournalRecord, str, dict[str, Any]]] = {}
        for r in records:
            routes = self.routes.get(r.topic)
            if routes is None or r.value is None:
                continue
            ev = orjson.loads(r.value)
            op = ev.get("op")
            if op not in ("c", "r", "u", "d"):
                continue  # truncate and messages name no rows
            for image in (ev.get("before"), ev.get("after")):
                if image is None:
                    continue
                for route in routes:
                    key = self._root_key(route, image, r, op)
                    if key is not None:
                        affected.pop(key, None)  # keep the order of each root's last change
                        affected[key] = (r, op, ev["source"])
        if not affected:
            return []
        return self.events(affected)

    def map_events(self, records: Sequence[JournalRecord]) -> list[SinkEvent]:
        """`map_batch` as the delivery engine takes it: each event as a `SinkEvent`."""
        return [parse_sink_event(r.seq, r.value) for r in self.map_batch(records) if r.value is not None]

    def _root_key(self, route: Route, image: dict[str, Any], r: JournalRecord, op: str) -> tuple[Any, ...] | None:
        try:
            key = route.root_key(image)
        except (ValueError, ArithmeticError, TypeError) as e:
            raise MappingRuntimeError(f"mapping {self.mapping.file}: {route.table.qualified} (journal seq {r.seq}): "
                                      f"cannot read the root key: {e}") from e
        if key is None and op == "d" and route.columns and all(image.get(c) is None for c in route.columns) and \
                any(image.get(c) is not None for c in route.table.key) and \
                not set(route.columns) <= set(route.table.key):
            raise MappingRuntimeError(
                f"mapping {self.mapping.file}: a delete of {route.table.qualified} (journal seq {r.seq}) carries "
                f"only its primary key, not {', '.join(route.columns)}, which name its {self.mapping.root.qualified}: "
                f"set REPLICA IDENTITY FULL on {route.table.qualified}")
        return key

    def events(self, affected: dict[tuple[Any, ...], tuple[JournalRecord, str, dict[str, Any]]]
               ) -> list[JournalRecord]:
        """Re-read the affected roots (one transaction) and make their events, in order of last change."""
        m = self.mapping
        # the subject of each requested root: computed by the bridge, as for the rows found below
        by_subject: dict[str, tuple[tuple[Any, ...], tuple[Any, ...], tuple[JournalRecord, str, dict[str, Any]]]] = {}
        for key, origin in affected.items():
            values = self._subject_values(key)
            if values is None:
                continue
            subject = self._subject(values)
            by_subject.pop(subject, None)
            by_subject[subject] = (key, values, origin)
        keys = [k for k, _, _ in by_subject.values()]
        queries = [m.query(keys[i:i + KEYS_PER_QUERY]) for i in range(0, len(keys), KEYS_PER_QUERY)]
        found: dict[str, tuple[Any, ...]] = {}
        for rows in self.reader.rows(queries):
            for row in rows:
                got = self._subject_values(tuple(row[:self._nkey]))
                subject = self._subject(got) if got is not None else ""
                if subject in found:
                    raise MappingRuntimeError(
                        f"mapping {m.file}: the source returned more than one row for {subject!r}: aggregate the "
                        f"child rows (GROUP BY the root key with json_agg / JSON_ARRAYAGG) or read them in a subquery")
                found[subject] = tuple(row[self._nkey:])
        out: list[JournalRecord] = []
        for subject, (_, values, (rec, op, source)) in by_subject.items():  # in order of each root's last change
            try:
                out.append(self._event(rec, op, source, subject, values, found.get(subject)))
            except (EntityError, TypeError, ValueError) as e:
                raise MappingRuntimeError(f"mapping {m.file} (journal seq {rec.seq}, subject {subject!r}): "
                                          f"{type(e).__name__}: {e}") from e
        return out

    def _subject_values(self, key: tuple[Any, ...]) -> tuple[Any, ...] | None:
        values = self.mapping.subject_values(key)
        return None if any(v is None for v in values) else values

    @staticmethod
    def _subject(values: tuple[Any, ...]) -> str:
        return _key_text(values[0]) if len(values) == 1 else "/".join(_key_text(v) for v in values)

    def _event(self, rec: JournalRecord, op: str, source: dict[str, Any], subject: str, key_values: tuple[Any, ...],
               row: tuple[Any, ...] | None) -> JournalRecord:
        w = self._writer
        if not w.bound:
            w.bind_source(f"/{source.get('name', '')}/{self.mapping.root.schema}/{self.mapping.root.name}")
        subject_json = orjson.dumps(subject)
        # the change that triggered the re-read: snapshot rows share one source position
        change = f"{rec.topic}\x1f{rec.key.decode(errors='replace') if rec.key else ''}"
        if row is None:
            data = orjson.dumps(dict(zip(self.key_names, key_values, strict=True)), default=encode_default,
                                option=orjson.OPT_UTC_Z)
            value = w.write(source, op, subject, subject_json, self._deleted, True, data, change)
            return JournalRecord(rec.seq, self.name, subject_json, value)
        values = list(row)
        for i in self._json:
            values[i] = _loads_json(values[i])
        fields: dict[str, Any] = dict(zip(self.mapping.names, values, strict=True))
        if self.entity is not None:
            fields = validate(self.entity, fields)
        data = orjson.dumps(fields, default=encode_default, option=orjson.OPT_UTC_Z)
        value = w.write(source, op, subject, subject_json, self._upserted, False, data, change)
        return JournalRecord(rec.seq, self.name, subject_json, value)

