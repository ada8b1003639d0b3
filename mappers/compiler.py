"""The mapping compiler: one SQL SELECT -> checked, typed, and compiled to one Python function.

Role: `compile_mapping(text, catalog, file=...)` parses the mapping with sqlglot in the source's dialect,
refuses everything that is not a single-table SELECT, resolves every column against the `Catalog`,
types every expression the way the source database would (PostgreSQL's strict operator resolution
with untyped literals; MySQL's implicit conversions), and generates Python source for the whole
mapping: the conversion of the referenced event values, the WHERE clause and the select list, with
NULL propagation and three-valued logic written inline and dialect-specific operations calling
`mappers.runtime`. The source is compiled once (like sqlglot's own Python executor); the per-row path
is one call of a plain function, with no tree walking. Constant sub-expressions (``'20'::int``,
``TO_DATE('20240101', 'YYYYMMDD')``) are evaluated at load time, so their errors are load-time errors.
Per row, the common cases are written out rather than called (decimal and timestamptz values,
decimal products, TRIM of a CHAR), WHERE is a truth test conjunct by conjunct, and TO_DATE /
STR_TO_DATE remember the dates of the values they have seen (`runtime.memoized`); each gives the
values and errors of the general code.

The previous row image: a column qualified with ``old.`` reads the row as it was before the change
(``new.`` or the table's own name or alias read the row after it), as in a trigger. On a create or
snapshot row, and on an update without a before image, every ``old.`` column is NULL. ``old.`` may
not appear in WHERE (membership is decided by each image on its own).

Failure story: every problem is collected (as many as can be found in one pass) and raised as one
`MappingError`, each with file, line and column: syntax errors, statements other than one SELECT,
joins/aggregates/subqueries/ORDER BY/LIMIT, unknown tables and columns (with a did-you-mean),
operators and functions the source would reject for the argument types, and any construct or
function this compiler has no exact semantics for -- never evaluated approximately.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from mappers import runtime as rt
from mappers.errors import MappingError, Problem, did_you_mean, position
from mappers.sqltypes import (
    BINARY_COLLATIONS,
    BOOL,
    DATE,
    DEC,
    FLOAT,
    INT,
    NULL,
    TEXT,
    TS,
    TSTZ,
    UNKNOWN,
    Catalog,
    Dialect,
    SqlType,
    Table,
    type_from_datatype,
)
from mappers.values import (
    UNAVAILABLE,
    Encoding,
    EvalError,
    decode_decimal_string,
    decode_timestamptz,
    decoder_for,
)

__all__ = ["TYPE_FIELD", "CompiledMapping", "compile_mapping", "parse_mapping"]

# A select-list column with this name is not a data field: it sets the CloudEvent type.
TYPE_FIELD = "_type"
OLD = "old"
NEW = "new"

Row = dict[str, Any]
EvalFn = Callable[[Row, Row | None], tuple[Any, ...] | None]
ProjectFn = Callable[[Row, Row | None], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Expr:
    """A typed expression: Python source computing it (`code`), or a load-time value (`const`)."""

    code: str
    type: SqlType
    const: bool = False
    value: Any = None
    old: bool = False


@dataclass(frozen=True, slots=True)
class OutputColumn:
    name: str
    type: SqlType
    reads_old: bool
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """A compiled single-table mapping.

    `evaluate(after, before)` -> the select-list values (a tuple in `columns` order), or None when the
    row is not a member (WHERE is not TRUE); `project` -> the values whatever WHERE says. `before` is the
    previous image for ``old.`` columns (None: all NULL). Values are SQL values (int, Decimal, str,
    date, ...); `TYPE_FIELD`, when selected, is among them.
    """

    file: str
    text: str
    dialect: Dialect
    table: Table
    columns: tuple[OutputColumn, ...]
    evaluate: EvalFn
    project: ProjectFn
    source_columns: tuple[str, ...]
    fingerprint: str
    python: str = field(repr=False)
    explain: Callable[[Row, Row | None], str] = field(repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


class _Fail(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REFUSED_CLAUSES = {
    "joins": "JOIN: multi-table mappings are not supported yet; map each table on its own",
    "group": "GROUP BY: aggregates need a multi-table mapping, which is not supported yet",
    "having": "HAVING: aggregates need a multi-table mapping, which is not supported yet",
    "order": "ORDER BY: a mapping maps each change on its own; order has no meaning",
    "limit": "LIMIT: a mapping maps each change on its own; LIMIT has no meaning",
    "offset": "OFFSET: a mapping maps each change on its own; OFFSET has no meaning",
    "distinct": "DISTINCT: a mapping maps each change on its own; DISTINCT has no meaning",
    "with_": "WITH: common table expressions are not supported in mappings",
    "with": "WITH: common table expressions are not supported in mappings",
    "windows": "WINDOW: window functions are not supported in mappings",
    "qualify": "QUALIFY is not supported in mappings",
    "laterals": "LATERAL is not supported in mappings",
    "into": "SELECT INTO is not a mapping",
    "locks": "FOR UPDATE/SHARE: a mapping never reads the source",
    "sample": "TABLESAMPLE is not supported in mappings",
    "settings": "SETTINGS is not supported in mappings",
}
_NONDETERMINISTIC = (exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentTime, exp.CurrentDatetime, exp.Rand,
                     exp.CurrentUser)


def parse_mapping(text: str, dialect: Dialect, file: str = "<mapping>") -> exp.Select:
    """The mapping's one SELECT statement; `MappingError` for syntax errors and other statements."""
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except TokenError as e:
        line, col = _token_error_position(text, str(e))
        raise MappingError([Problem(file, line, col, "syntax error: unterminated string, quoted identifier or "
                                    "comment")]) from None
    except ParseError as e:
        info = e.errors[0] if e.errors else {}
        line = int(info.get("line") or 1)
        col = int(info.get("col") or 1)
        near = str(info.get("highlight") or "")
        col = max(1, col - len(near) + 1)
        where = f' at or near "{near}"' if near else " at the end of the mapping"
        raise MappingError([Problem(file, line, col, f"syntax error{where}")]) from None
    if not statements:
        raise MappingError([Problem(file, 1, 1, "the mapping is empty: it must be one SELECT statement")])
    if len(statements) > 1:
        line, col = _node_position(text, statements[1])
        raise MappingError([Problem(file, line, col, "a mapping is exactly one SELECT statement; found "
                                    f"{len(statements)} statements")])
    stmt = statements[0]
    if not isinstance(stmt, exp.Select):
        kind = "a set operation (UNION/INTERSECT/EXCEPT)" if isinstance(stmt, exp.SetOperation) else \
            f"a {stmt.key.upper()} statement"
        line, col = position(text, len(text) - len(text.lstrip()))
        raise MappingError([Problem(file, line, col, f"a mapping must be a SELECT statement, not {kind}")])
    return stmt


def _token_error_position(text: str, message: str) -> tuple[int, int]:
    m = re.search(r"Error tokenizing '(.*)'", message, re.DOTALL)
    if m:
        snippet = m.group(1)
        i = text.find(snippet)
        if i >= 0:
            # the tokenizer stops at the opening quote of what never closes: find it in the snippet
            for q in ("'", '"', "`", "/*"):
                j = text.find(q, i)
                if j >= 0:
                    return position(text, j)
    return 1, 1


def _node_offset(node: exp.Expr) -> int | None:
    """Where a node starts in the text: its own or its first positioned descendant's token; nodes
    sqlglot built itself (normalized intervals, formats) take their closest positioned ancestor's."""
    current: exp.Expr | None = node
    while current is not None:
        best: int | None = None
        for n in current.walk():
            meta = n.meta if isinstance(n, exp.Expr) else None
            if meta and "start" in meta:
                start = int(meta["start"])
                if best is None or start < best:
                    best = start
        if best is not None:
            return best
        current = current.parent
    return None


def _node_position(text: str, node: exp.Expr) -> tuple[int, int]:
    offset = _node_offset(node)
    return (1, 1) if offset is None else position(text, offset)


# ------------------------------------------------------------------------------------------------ compiler


class _Compiler:
    def __init__(self, text: str, catalog: Catalog, file: str, encoding: Encoding) -> None:
        self.text = text
        self.catalog = catalog
        self.dialect: Dialect = catalog.dialect
        self.pg = self.dialect == "postgres"
        self.file = file
        self.encoding = encoding
        self.ns: dict[str, Any] = {"Decimal": Decimal, "_dadd": rt.DCTX.add, "_dsub": rt.DCTX.subtract,
                                   "_dmul_raw": rt.DCTX.multiply, "_nz": rt.nz, "InvalidOperation": InvalidOperation,
                                   "_fromiso": datetime.fromisoformat, "_UNAV": UNAVAILABLE, "_unav": _unavailable,
                                   "datetime": datetime, "date": date, "UTC": UTC, "time": time}
        self._fns: dict[int, str] = {}
        self._n = 0
        self.table: Table | None = None
        self.qualifiers: set[str] = set()
        self.cur: dict[str, int] = {}
        self.old: dict[str, int] = {}
        self.col_types: dict[str, SqlType] = {}
        self.where_cols: set[str] = set()
        self.in_where = False
        self.problems: list[Problem] = []

    # -- plumbing --

    def fail(self, node: exp.Expr | None, message: str) -> NoReturn:
        line, col = _node_position(self.text, node) if node is not None else (1, 1)
        raise _Fail(Problem(self.file, line, col, message))

    def note(self, node: exp.Expr | None, message: str) -> None:
        try:
            self.fail(node, message)
        except _Fail as f:
            self.problems.append(f.problem)

    def tmp(self) -> str:
        self._n += 1
        return f"t{self._n}"

    def fn(self, obj: Any, hint: str = "f") -> str:
        key = id(obj)
        name = self._fns.get(key)
        if name is None:
            self._n += 1
            name = f"_{hint}{self._n}"
            self._fns[key] = name
            self.ns[name] = obj
        return name

    def lit(self, value: Any, t: SqlType) -> Expr:
        if value is None:
            return Expr("None", t if t.kind != "unknown" else NULL, const=True, value=None)
        if isinstance(value, bool) or (isinstance(value, int) and not isinstance(value, bool)) or \
                (isinstance(value, str) and len(value) < 200):
            return Expr(repr(value), t, const=True, value=value)
        self._n += 1
        name = f"k{self._n}"
        self.ns[name] = value
        return Expr(name, t, const=True, value=value)

    def fold(self, e: Expr, node: exp.Expr) -> Expr:
        """Evaluate a constant expression now: its errors are load-time errors."""
        try:
            value = eval(compile(e.code, "<constant>", "eval"), self.ns, {})
        except EvalError as err:
            self.fail(node, str(err))
        except (ArithmeticError, ValueError, OverflowError) as err:
            self.fail(node, f"cannot evaluate: {err}")
        return self.lit(value, e.type)

    def apply(self, template: str | Callable[..., Any], args: Sequence[Expr], rtype: SqlType,
              node: exp.Expr, *, extra: Sequence[str] = (), strict: bool = True) -> Expr:
        """`template` (a format with {0}, {1}... or a function) applied to args; NULL in -> NULL out."""
        parts: list[str] = []
        conds: list[str] = []
        for a in args:
            if a.const:
                if a.value is None and strict:
                    return self.lit(None, rtype)
                parts.append(a.code)
            elif _SIMPLE.match(a.code) or not strict:
                conds.append(f"{a.code} is None")
                parts.append(a.code)
            else:
                t = self.tmp()
                conds.append(f"({t} := {a.code}) is None")
                parts.append(t)
        if isinstance(template, str):
            call = template.format(*parts, *extra)
        else:
            call = f"{self.fn(template)}({', '.join([*parts, *extra])})"
        code = f"(None if {' or '.join(conds)} else {call})" if conds and strict else f"({call})"
        e = Expr(code, rtype, old=any(a.old for a in args))
        if all(a.const for a in args):
            return self.fold(e, node)
        return e

    def bind(self, e: Expr) -> tuple[str, str]:
        """(first use, later uses) of an expression evaluated once."""
        if e.const or _SIMPLE.match(e.code):
            return e.code, e.code
        t = self.tmp()
        return f"({t} := {e.code})", t

    # -- statement --

    def compile(self, stmt: exp.Select) -> tuple[list[tuple[OutputColumn, Expr]], Expr | None]:
        for arg, message in _REFUSED_CLAUSES.items():
            if stmt.args.get(arg):
                value = stmt.args[arg]
                node = value[0] if isinstance(value, list) else value
                self.note(node if isinstance(node, exp.Expr) else stmt, message)
        for node in stmt.find_all(exp.Subquery, exp.Select):
            if node is not stmt and not isinstance(node.parent, exp.Subquery):
                self.note(node, "subqueries are not supported in mappings")
        for node in stmt.find_all(exp.AggFunc):
            self.note(node, f"aggregate function {node.sql(dialect=self.dialect)} needs a multi-table mapping, "
                            "which is not supported yet")
        for node in stmt.find_all(exp.Window):
            self.note(node, "window functions are not supported in mappings")
        if self.problems:
            return [], None
        from_ = stmt.args.get("from_") or stmt.args.get("from")
        if not isinstance(from_, exp.From):
            self.fail(stmt, "a mapping selects FROM one source table")
        if not isinstance(from_.this, exp.Table) or (isinstance(from_.this.this, exp.Expr) and \
                not isinstance(from_.this.this, exp.Identifier)):
            self.fail(from_.this, "a mapping selects FROM one source table (a table name)")
        self.table = self.resolve_table(from_.this)
        outputs: list[tuple[OutputColumn, Expr]] = []
        seen: set[str] = set()
        items: list[exp.Expr] = []
        for item in stmt.expressions:
            if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
                for c in self.table.columns:
                    items.append(exp.column(c.name, quoted=True))
            else:
                items.append(item)
        for item in items:
            try:
                name, node = self.output_name(item)
                e = self.expr(node)
                if name in seen:
                    self.fail(item, f"the select list names '{name}' twice")
                seen.add(name)
                if name == TYPE_FIELD and not e.type.is_string and e.type.kind not in ("unknown", "null"):
                    self.fail(node, f"{TYPE_FIELD} sets the event type and must be text, not {e.type.show()}")
                if e.type.kind in ("unknown", "null"):
                    e = replace(e, type=TEXT)
                line, col = _node_position(self.text, item) if item.meta or any(True for _ in item.walk()) else (1, 1)
                outputs.append((OutputColumn(name, e.type, e.old, line, col), e))
            except _Fail as f:
                self.problems.append(f.problem)
        where: Expr | None = None
        w = stmt.args.get("where")
        if isinstance(w, exp.Where):
            try:
                for ref in w.find_all(exp.Column):
                    if ref.table and self.norm(ref.args["table"]) == OLD:
                        self.fail(ref, "old.* cannot be used in WHERE: membership is decided by each row image "
                                       "on its own (use old.* in the select list to derive transitions)")
                self.in_where = True
                where = self.membership(w.this)
            except _Fail as f:
                self.problems.append(f.problem)
            finally:
                self.in_where = False
        return outputs, where

    def membership(self, node: exp.Expr) -> Expr:
        """WHERE as a Python truth test: its code is True exactly when the clause is TRUE.

        A top-level ``a AND b AND c`` is tested conjunct by conjunct instead of computing its three-valued
        result and comparing that with TRUE. The same conjuncts are evaluated in the same order as the
        three-valued AND does (left to right, stopping at the first FALSE), so a row raises the same
        error; NULL and FALSE both leave the row out."""
        parts: list[exp.Expr] = []

        def flatten(n: exp.Expr) -> None:
            while isinstance(n, exp.Paren) and isinstance(n.this, exp.And):
                n = n.this
            if isinstance(n, exp.And):
                flatten(n.this)
                flatten(n.expression)
            else:
                parts.append(n)
        flatten(node)
        if len(parts) == 1:
            e = self.condition(node, "WHERE")
            return Expr(f"({e.code} is True)", BOOL, old=e.old)
        conds = [self.condition(p, "AND") for p in parts]  # as x_And compiles each side
        first = [self.bind(c) for c in conds[:-1]]
        code = " and ".join([f"{f} is not False" for f, _ in first] + [f"{conds[-1].code} is True"]
                            + [f"{later} is True" for _, later in first])
        return Expr(f"({code})", BOOL, old=any(c.old for c in conds))

    def norm(self, ident: exp.Expr | str | None) -> str:
        """An identifier as the server resolves it: PostgreSQL folds unquoted names to lower case."""
        if ident is None:
            return ""
        if isinstance(ident, str):
            return ident
        if isinstance(ident, exp.Identifier):
            text = str(ident.this)
            return text if ident.quoted or not self.pg else text.lower()
        return ident.name if not self.pg else ident.name.lower()

    def resolve_table(self, t: exp.Table) -> Table:
        schema = self.norm(t.args.get("db")) or None
        name = self.norm(t.args.get("this"))
        found = self.catalog.find(schema, name)
        if not found and not self.pg:
            found = [x for x in self.catalog.tables.values()
                     if x.name.lower() == name.lower() and (schema is None or x.schema.lower() == schema.lower())]
        if len(found) > 1:
            self.fail(t, f"table '{name}' is ambiguous: it exists in "
                         f"{', '.join(x.schema for x in found)}; qualify it with its "
                         f"{'schema' if self.pg else 'database'}")
        if not found:
            label = f"{schema}.{name}" if schema else name
            names = [f"{x.schema}.{x.name}" if schema else x.name for x in self.catalog.tables.values()]
            self.fail(t, f"unknown table '{label}'{did_you_mean(label, names)}")
        table = found[0]
        alias = t.args.get("alias")
        self.qualifiers = {table.name, NEW}
        if isinstance(alias, exp.TableAlias) and alias.this is not None:
            a = self.norm(alias.this)
            if a in (OLD, NEW):
                self.fail(alias, f"the table alias '{a}' is reserved: old.* reads the previous row image")
            self.qualifiers = {a, NEW}
        return table

    def output_name(self, item: exp.Expr) -> tuple[str, exp.Expr]:
        if isinstance(item, exp.Alias):
            return self.norm(item.args["alias"]), item.this
        if isinstance(item, exp.Column):
            return self.norm(item.args["this"]), item
        self.fail(item, f"give the expression a name with AS (it becomes the event field): "
                        f"{item.sql(dialect=self.dialect)[:60]}")

    # -- expressions --

    def expr(self, node: exp.Expr) -> Expr:
        if isinstance(node, _NONDETERMINISTIC):
            self.fail(node, f"{node.sql(dialect=self.dialect)} is not deterministic: a mapping must give the same "
                            "event when history is replayed")
        handler = getattr(self, "x_" + type(node).__name__, None)
        if handler is None:
            self.fail(node, f"not supported in mappings: {_describe(node, self.dialect)}")
        result: Expr = handler(node)
        return result

    def condition(self, node: exp.Expr, what: str) -> Expr:
        e = self.expr(node)
        if e.type.kind == "bool" or e.type.kind == "null":
            return e
        if self.pg:
            if e.type.kind == "unknown":
                return self.convert(e, BOOL, node, explicit=False)
            self.fail(node, f"argument of {what} must be type boolean, not type {e.type.show()}")
        return self.apply(rt.my_truth, [e], BOOL, node, strict=False)

    def x_Paren(self, node: exp.Paren) -> Expr:
        return self.expr(node.this)

    def x_Column(self, node: exp.Column) -> Expr:
        if isinstance(node.this, exp.Star):
            self.fail(node, "'*' is only allowed alone in the select list")
        assert self.table is not None
        qual = self.norm(node.args.get("table")) if node.args.get("table") else ""
        if node.args.get("db"):
            self.fail(node, "qualify columns with the table name or alias, old or new only")
        if qual and qual != OLD and qual not in self.qualifiers:
            self.fail(node, f"unknown table '{qual}' in column reference (the mapping reads "
                            f"{self.table.qualified}; old.<column> reads its previous image)")
        name = self.norm(node.args["this"])
        col = self.table.by_name.get(name)
        if col is None and not self.pg:
            col = next((c for c in self.table.columns if c.name.lower() == name.lower()), None)
        if col is None:
            self.fail(node, f"unknown column '{name}' in {self.table.qualified}"
                            f"{did_you_mean(name, self.table.by_name)}")
        is_old = qual == OLD
        slots = self.old if is_old else self.cur
        i = slots.setdefault(col.name, len(slots))
        self.col_types[col.name] = col.type
        if self.in_where:
            self.where_cols.add(col.name)
        return Expr(f"{'o' if is_old else 'n'}{i}", col.type, old=is_old)

    def x_Literal(self, node: exp.Literal) -> Expr:
        text = node.this
        if node.is_string:
            return self.lit(text, UNKNOWN if self.pg else TEXT)
        if re.fullmatch(r"\d+", text):
            v = int(text)
            if self.pg:
                t = INT if v < 2**31 else (SqlType("int", name="bigint") if v < 2**63 else DEC)
                return self.lit(Decimal(v) if t is DEC else v, t)
            return self.lit(v, INT if v < 2**63 else DEC)
        if not self.pg and ("e" in text or "E" in text):
            return self.lit(float(text), FLOAT)
        return self.lit(rt.plain(Decimal(text)), DEC)

    def x_ByteString(self, node: exp.ByteString) -> Expr:
        return self.lit(node.this, UNKNOWN if self.pg else TEXT)

    def x_Null(self, node: exp.Null) -> Expr:
        return self.lit(None, NULL)

    def x_Boolean(self, node: exp.Boolean) -> Expr:
        return self.lit(bool(node.this), BOOL)

    # -- type conversion --

    def common(self, exprs: Sequence[Expr], node: exp.Expr, what: str) -> SqlType:
        """The type several expressions are resolved to (CASE, COALESCE, IN, comparisons)."""
        typed = [e.type for e in exprs if e.type.kind not in ("null", "unknown")]
        if not typed:
            return TEXT
        kinds = {t.kind for t in typed}
        untyped = any(e.type.kind in ("null", "unknown") for e in exprs)
        if len(kinds) == 1:
            first = typed[0]
            if first.kind == "int":
                return max(typed, key=lambda t: rt.int_width(t.name))
            if first.kind == "char" and (untyped or any(t.length != first.length for t in typed)):
                return SqlType("char", name="bpchar", collation=first.collation)
            if first.kind == "dec" and any((t.precision, t.scale) != (first.precision, first.scale) for t in typed):
                return DEC
            return first
        if kinds <= {"int", "dec", "float", "bool"} and (not self.pg or "bool" not in kinds):
            return FLOAT if "float" in kinds else DEC if "dec" in kinds else INT
        if kinds <= {"text", "char"}:
            coll = next((t.collation for t in typed if t.collation), None)
            return SqlType("text", name="text", collation=coll)
        if kinds <= {"date", "ts", "tstz"}:
            return TSTZ if "tstz" in kinds else TS
        if not self.pg:
            if kinds & {"text", "char"} and len(kinds - {"text", "char"}) == 1 and \
                    next(iter(kinds - {"text", "char"})) in ("date", "ts", "time"):
                return next(t for t in typed if t.kind in ("date", "ts", "time"))
            if kinds & {"text", "char"}:
                return TEXT if what in ("CASE", "COALESCE", "IF", "GREATEST/LEAST") else FLOAT
            if kinds <= {"int", "dec", "float", "bool", "date", "ts"}:
                return FLOAT
        names = sorted({t.show() for t in typed})
        self.fail(node, f"{what} types {' and '.join(names)} cannot be matched")

    def convert(self, e: Expr, target: SqlType, node: exp.Expr, explicit: bool) -> Expr:
        """`e` as a value of `target`: implicit conversions as the source allows them, or a CAST."""
        src = e.type.kind
        dst = target.kind
        if src == "null":
            return self.lit(None, target)
        if src == dst and dst not in ("char", "text", "dec", "int", "ts", "tstz", "time"):
            return replace(e, type=target)
        if src == "other" or dst == "other":
            if src == dst:
                return replace(e, type=target)
            self.fail(node, f"values of type {e.type.show() if src == 'other' else target.show()} cannot be "
                            "used in expressions by this bridge (only selected as they are, or tested with IS NULL)")
        code = self.conversion(e, target, node, explicit)
        if code is None:
            return replace(e, type=target)
        if isinstance(code, str):
            return self.apply(code, [e], target, node)
        return self.apply(code, [e], target, node)

    def conversion(self, e: Expr, target: SqlType, node: exp.Expr,
                   explicit: bool) -> str | Callable[..., Any] | None:
        src = e.type.kind
        dst = target.kind
        pg = self.pg
        unknown = src == "unknown"

        def refuse() -> NoReturn:
            if pg and not explicit:
                self.fail(node, f"cannot use {e.type.show()} as {target.show()} without a cast "
                                f"(write CAST(... AS {target.show()}))")
            self.fail(node, f"cannot cast type {e.type.show()} to {target.show()}")

        if src in ("text", "char", "unknown"):
            if pg and not (explicit or unknown) and dst not in ("text", "char"):
                refuse()
            if dst == "text":
                if pg and src == "char":
                    return rt.char_key  # bpchar -> text drops the padding
                return _varchar_typmod(target.length)
            if dst == "char":
                if pg:
                    return _bpchar_typmod(target.length, explicit or unknown)
                return _varchar_typmod(target.length)
            if dst == "int":
                if pg:
                    name = target.name if target.name in rt._INT_RANGES else "integer"
                    return _partial(rt.pg_to_int, name)
                return rt.my_str_to_int
            if dst == "dec":
                if pg:
                    return _chain(rt.pg_to_numeric, _typmod(target))
                return _chain(rt.my_str_to_dec, _my_typmod(target))
            if dst == "float":
                return rt.pg_to_float if pg else rt.my_str_to_float
            if dst == "bool":
                if pg:
                    return rt.pg_to_bool
                return rt.my_truth
            if dst == "date":
                return rt.pg_to_date if pg else rt.my_to_date
            if dst == "ts":
                return _chain(rt.pg_to_ts, _ts_round(target)) if pg else rt.my_to_ts
            if dst == "tstz":
                return rt.pg_to_tstz if pg else rt.my_to_ts
            if dst == "time":
                return rt.pg_to_time
            refuse()
        if dst in ("text", "char"):
            if pg and not explicit:
                refuse()
            text = rt.pg_text_of(src) if pg else rt.my_text_of(src, e.type.precision)
            if pg and src == "bool":
                text = _pg_bool_cast_text
            return _chain(text, _bpchar_typmod(target.length, True) if pg and dst == "char"
                          else _varchar_typmod(target.length))
        if src == "int" or src == "bool":
            if dst == "int":
                if src == "bool":
                    if pg and not explicit:
                        refuse()
                    return "int({0})"
                if pg and target.name in ("smallint", "int2", "integer", "int4", "int") and \
                        e.type.name not in ("smallint", "int2", target.name):
                    return _partial(rt.check_int, target.name)
                return None
            if dst == "dec":
                if pg and src == "bool":
                    refuse()
                typmod = _typmod(target) if pg else _my_typmod(target)
                return "Decimal({0})" if typmod is None else _chain(Decimal, typmod)
            if dst == "float":
                return "float({0})"
            if dst == "bool":
                if pg and not explicit:
                    refuse()
                return "({0} != 0)"
            if not pg and dst == "date" and src == "int":
                return rt.my_int_to_date
            refuse()
        if src == "dec":
            if dst == "int":
                if pg and not explicit:
                    refuse()
                return _partial(rt.pg_num_to_int, target.name if target.name in rt._INT_RANGES else "integer") \
                    if pg else rt.my_dec_to_int
            if dst == "dec":
                return _typmod(target) if pg else _my_typmod(target)
            if dst == "float":
                return "float({0})"
            refuse()
        if src == "float":
            if dst == "int":
                if pg and not explicit:
                    refuse()
                return _partial(rt.float_to_int, target.name if target.name in rt._INT_RANGES else "integer") \
                    if pg else rt.my_float_to_int
            if dst == "dec":
                if pg and not explicit:
                    refuse()
                to_dec = _float_to_dec_pg if pg else _float_to_dec_my
                rounding = _typmod(target) if pg else _my_typmod(target)
                return to_dec if rounding is None else _chain(to_dec, rounding)
            refuse()
        if src == "date":
            if dst == "ts":
                return "datetime({0}.year, {0}.month, {0}.day)"
            if dst == "tstz":
                return "datetime({0}.year, {0}.month, {0}.day, tzinfo=UTC)"
            refuse()
        if src == "ts":
            if dst == "ts":
                return _ts_round(target) if pg else None
            if dst == "date":
                if pg and not explicit:
                    refuse()
                return "{0}.date()"
            if dst == "tstz":
                return "{0}.replace(tzinfo=UTC)"
            if dst == "time":
                return "{0}.time()"
            refuse()
        if src == "tstz":
            if dst == "tstz":
                return None
            if pg and not explicit:
                refuse()
            if dst == "date":
                return "{0}.date()"
            if dst == "ts":
                return "{0}.replace(tzinfo=None)"
            if dst == "time":
                return "{0}.time()"
            refuse()
        if src == "time" and dst == "time":
            return None
        refuse()

    def x_Cast(self, node: exp.Cast) -> Expr:
        to = node.args["to"]
        if not isinstance(to, exp.DataType):
            self.fail(node, "CAST to this type is not supported")
        target = type_from_datatype(to, self.dialect)
        if target.kind == "other":
            self.fail(to, f"CAST to {to.sql(dialect=self.dialect)} is not supported in mappings")
        if self.pg and target.kind == "char" and not to.expressions and to.this == exp.DataType.Type.CHAR:
            target = replace(target, length=1)
        if not self.pg and target.kind == "char":
            target = SqlType("text", length=target.length if to.expressions else None, name="char")
        if not self.pg and target.kind == "dec" and target.precision is None:
            target = replace(target, precision=10, scale=0)
        e = self.expr(node.this)
        if node.args.get("safe"):
            self.fail(node, "TRY_CAST is not supported in mappings")
        return self.convert(e, target, node, explicit=True)

    x_TryCast = x_Cast

    def to_text(self, e: Expr, node: exp.Expr, fname: str, *, strip_char: bool = True) -> Expr:
        """An argument of a function taking text: PostgreSQL only takes strings (CHAR loses its padding
        unless `strip_char` is False); MySQL converts anything."""
        k = e.type.kind
        if k in ("null",):
            return self.lit(None, TEXT)
        if k == "unknown":
            return replace(e, type=TEXT)
        if k == "text":
            return e
        if k == "char":
            if self.pg and strip_char:
                return self.apply("{0}.rstrip(' ')", [e], replace(e.type, kind="text", length=None), node)
            return replace(e, type=SqlType("text", name="text", collation=e.type.collation))
        if k == "other":
            self.fail(node, f"values of type {e.type.show()} cannot be used in expressions by this bridge "
                            "(only selected as they are, or tested with IS NULL)")
        if self.pg:
            self.fail(node, f"function {fname}({e.type.show()}) does not exist (cast the argument to text)")
        return self.apply(rt.my_text_of(k, e.type.precision), [e], TEXT, node)

    def to_int(self, e: Expr, node: exp.Expr, fname: str) -> Expr:
        k = e.type.kind
        if k == "int" or k == "null":
            return e if k == "int" else self.lit(None, INT)
        if k == "unknown":
            return self.convert(e, INT, node, explicit=False)
        if self.pg:
            self.fail(node, f"function {fname} needs an integer here, not {e.type.show()} (cast it)")
        if k in ("text", "char"):
            return self.apply(rt.my_str_to_int, [e], INT, node)
        if k == "dec":
            return self.apply(rt.my_dec_to_int, [e], INT, node)
        if k == "float":
            return self.apply(rt.my_float_to_int, [e], INT, node)
        if k == "bool":
            return self.apply("int({0})", [e], INT, node)
        self.fail(node, f"function {fname} needs an integer here, not {e.type.show()}")

    def numeric_pair(self, a: Expr, b: Expr, node: exp.Expr, op: str) -> tuple[Expr, Expr, SqlType]:
        ta, tb = a.type.kind, b.type.kind
        if self.pg:
            if ta == "unknown" and tb == "unknown":
                self.fail(node, f"operator is not unique: unknown {op} unknown (cast one side)")
            if ta == "unknown":
                a = self.convert(a, b.type if b.type.is_numeric else TEXT, node, explicit=False)
            if tb == "unknown":
                b = self.convert(b, a.type if a.type.is_numeric else TEXT, node, explicit=False)
            if a.type.kind == "null" and b.type.is_numeric:
                return self.lit(None, b.type), b, b.type
            if b.type.kind == "null" and a.type.is_numeric:
                return a, self.lit(None, a.type), a.type
            if not (a.type.is_numeric and b.type.is_numeric):
                self.fail(node, f"operator does not exist: {a.type.show()} {op} {b.type.show()}")
            t = self.common([a, b], node, f"operator {op}")
        else:
            def num(x: Expr) -> Expr:
                k = x.type.kind
                if k in ("text", "char", "unknown"):
                    return self.apply(rt.my_str_to_float, [x], FLOAT, node)
                if k == "bool":
                    return replace(x, type=INT)
                if k == "null":
                    return self.lit(None, INT)
                if not x.type.is_numeric:
                    self.fail(node, f"{x.type.show()} {op} ...: use DATE_ADD/DATE_SUB/DATEDIFF for dates in "
                                    "MySQL mappings" if x.type.is_temporal else
                              f"operator {op} cannot take {x.type.show()}")
                return x
            a, b = num(a), num(b)
            kinds = {a.type.kind, b.type.kind}
            t = FLOAT if "float" in kinds else DEC if "dec" in kinds else INT
        return self.convert(a, t, node, False) if a.type.kind != t.kind else a, \
            self.convert(b, t, node, False) if b.type.kind != t.kind else b, t

    # -- arithmetic --

    def arith(self, node: exp.Binary, op: str) -> Expr:
        a, b = self.expr(node.this), self.expr(node.expression)
        if self.pg:
            dates = (a.type.kind == "date", b.type.kind == "date")
            if any(dates):
                return self.date_arith(a, b, node, op)
            if a.type.kind in ("ts", "tstz") or b.type.kind in ("ts", "tstz"):
                self.fail(node, f"operator {op} on timestamps is not supported in mappings (intervals are not "
                                "supported); cast to date and add days")
        a, b, t = self.numeric_pair(a, b, node, op)
        k = t.kind
        if op == "/":
            if self.pg:
                if k == "int":
                    return self.apply(f"{self.int_check(t)}({self.fn(rt.pg_idiv)}({{0}}, {{1}}))", [a, b], t, node)
                div: Callable[..., Any] = rt.pg_ndiv if k == "dec" else rt.pg_fdiv
                return self.apply(div, [a, b], t, node)
            if k == "float":
                return self.apply(rt.my_fdiv, [a, b], FLOAT, node)
            return self.apply(_my_div_dynamic, [a, b], DEC, node)
        if op == "%":
            if self.pg:
                if k == "float":
                    self.fail(node, "operator does not exist: double precision % double precision")
                return self.apply(rt.pg_imod if k == "int" else rt.pg_nmod, [a, b], t, node)
            return self.apply(rt.my_mod, [a, b], t, node)
        if op == "DIV":
            return self.apply(rt.my_intdiv, [a, b], INT, node)
        if k == "dec":
            if op == "*":  # = rt.dmul, inline (a frame per row costs more than the product)
                r = self.tmp()
                return self.apply(f"({r}.copy_abs() if ({r} := _dmul_raw({{0}}, {{1}})).is_zero() and {r}.is_signed() "
                                  f"else {r})", [a, b], DEC, node)
            fname = {"+": "_dadd", "-": "_dsub"}[op]
            return self.apply(fname + "({0}, {1})", [a, b], DEC, node)
        if k == "int":
            return self.apply(f"{self.int_check(t)}({{0}} {op} {{1}})", [a, b], t, node)
        return self.apply("({0} " + op + " {1})", [a, b], t, node)

    def date_arith(self, a: Expr, b: Expr, node: exp.Binary, op: str) -> Expr:
        if op == "+":
            d, n = (a, b) if a.type.kind == "date" else (b, a)
            if n.type.kind == "unknown":
                n = self.convert(n, INT, node, False)
            if n.type.kind != "int":
                self.fail(node, f"operator does not exist: {a.type.show()} + {b.type.show()}")
            return self.apply(rt.pg_date_add, [d, n], DATE, node)
        if op == "-" and a.type.kind == "date":
            if b.type.kind == "unknown":
                self.fail(node, "operator is not unique: date - unknown (cast the literal to integer or date)")
            if b.type.kind == "int":
                return self.apply(rt.pg_date_add, [a, self.apply("(-{0})", [b], INT, node)], DATE, node)
            if b.type.kind == "date":
                return self.apply(rt.date_diff, [a, b], INT, node)
        self.fail(node, f"operator does not exist: {a.type.show()} {op} {b.type.show()}")

    def x_Add(self, node: exp.Add) -> Expr:
        return self.arith(node, "+")

    def x_Sub(self, node: exp.Sub) -> Expr:
        return self.arith(node, "-")

    def x_Mul(self, node: exp.Mul) -> Expr:
        return self.arith(node, "*")

    def x_Div(self, node: exp.Div) -> Expr:
        return self.arith(node, "/")

    def x_Mod(self, node: exp.Mod) -> Expr:
        return self.arith(node, "%")

    def x_IntDiv(self, node: exp.IntDiv) -> Expr:
        if self.pg:
            self.fail(node, "DIV is MySQL's integer division; in PostgreSQL integer / integer truncates")
        return self.arith(node, "DIV")

    def x_Neg(self, node: exp.Neg) -> Expr:
        e = self.expr(node.this)
        if e.type.kind == "unknown":
            e = self.convert(e, DEC if self.pg else FLOAT, node, False)
        if not self.pg and e.type.kind in ("text", "char"):
            e = self.apply(rt.my_str_to_float, [e], FLOAT, node)
        if not e.type.is_numeric and e.type.kind != "null":
            self.fail(node, f"operator does not exist: - {e.type.show()}")
        if e.type.kind == "dec":
            return self.apply("_nz(-{0})", [e], e.type, node)
        if e.type.kind == "int":
            return self.apply(f"{self.int_check(e.type)}(-{{0}})", [e], e.type, node)
        return self.apply("(-{0})", [e], e.type, node)

    def int_check(self, t: SqlType) -> str:
        """The range check of integer arithmetic in type `t` (both servers raise on overflow)."""
        if not self.pg:
            return self.fn(rt.my_int8)
        return self.fn({2: rt.int2, 4: rt.int4, 8: rt.int8}[rt.int_width(t.name)])

    # -- logic --

    def x_And(self, node: exp.And) -> Expr:
        a, b = self.condition(node.this, "AND"), self.condition(node.expression, "AND")
        fa, la = self.bind(a)
        fb, lb = self.bind(b)
        e = Expr(f"(False if {fa} is False or {fb} is False else (None if {la} is None or {lb} is None else True))",
                 BOOL, old=a.old or b.old)
        return self.fold(e, node) if a.const and b.const else e

    def x_Or(self, node: exp.Or) -> Expr:
        a, b = self.condition(node.this, "OR"), self.condition(node.expression, "OR")
        fa, la = self.bind(a)
        fb, lb = self.bind(b)
        e = Expr(f"(True if {fa} is True or {fb} is True else (None if {la} is None or {lb} is None else False))",
                 BOOL, old=a.old or b.old)
        return self.fold(e, node) if a.const and b.const else e

    def x_Xor(self, node: exp.Xor) -> Expr:
        a, b = self.condition(node.this, "XOR"), self.condition(node.expression, "XOR")
        return self.apply("({0} != {1})", [a, b], BOOL, node)

    def x_Not(self, node: exp.Not) -> Expr:
        return self.apply("(not {0})", [self.condition(node.this, "NOT")], BOOL, node)

    def x_Is(self, node: exp.Is) -> Expr:
        e = self.expr(node.this)
        target = node.expression
        neg = "not " if node.args.get("negate") else ""
        if isinstance(target, exp.Null):
            return self.apply(f"({{0}} is {neg}None)", [e], BOOL, node, strict=False)
        if isinstance(target, exp.Boolean):
            c = self.condition(node.this, "IS")
            return self.apply(f"({{0}} is {neg}{bool(target.this)})", [c], BOOL, node, strict=False)
        self.fail(node, f"not supported in mappings: {_describe(node, self.dialect)}")

    # -- comparison --

    def compare_types(self, a: Expr, b: Expr, node: exp.Expr, op: str) -> tuple[Expr, Expr, Callable[[str], str]]:
        """Both sides converted to the type they are compared as, and the comparison key of that type."""
        if self.pg:
            t = self.common([a, b], node, f"operator {op}:") if not (
                a.type.kind == "unknown" and b.type.kind == "unknown") else TEXT
            if a.type.kind in ("text", "char", "unknown") and b.type.kind in ("text", "char", "unknown") and \
                    t.kind in ("text", "char"):
                pass
            elif a.type.kind not in ("null", "unknown") and b.type.kind not in ("null", "unknown") and \
                    not (a.type.is_numeric and b.type.is_numeric) and \
                    not ({a.type.kind, b.type.kind} <= {"date", "ts", "tstz"}) and a.type.kind != b.type.kind and \
                    not ({a.type.kind, b.type.kind} <= {"text", "char"}):
                self.fail(node, f"operator does not exist: {a.type.show()} {op} {b.type.show()}")
        else:
            t = self.common([a, b], node, f"operator {op}:")
        a2 = self.convert(a, t, node, False) if a.type.kind != t.kind else a
        b2 = self.convert(b, t, node, False) if b.type.kind != t.kind else b
        key = self.key_of(t, op, node)
        return a2, b2, key

    def key_of(self, t: SqlType, op: str, node: exp.Expr) -> Callable[[str], str]:
        if t.kind == "other":
            self.fail(node, f"values of type {t.show()} cannot be compared by this bridge")
        if t.kind not in ("text", "char"):
            return lambda c: c
        if self.pg:
            if op not in ("=", "<>", "IN", "IS DISTINCT FROM") and (t.collation or "").lower() not in BINARY_COLLATIONS:
                self.fail(node, f"ordering comparison of text under collation '{t.collation}' is not supported "
                                "(this bridge orders text by code point, as the C collation does)")
            if t.kind == "char":
                return lambda c: f"{c}.rstrip(' ')"
            return lambda c: c
        coll = (t.collation or "utf8mb4_general_ci").lower()
        if "nopad" in coll and coll.endswith("_bin"):
            return lambda c: c
        if coll.endswith("_bin") or coll == "binary":
            return lambda c: f"{self.fn(rt.bin_key)}({c})"
        return lambda c: f"{self.fn(rt.general_ci_key)}({c})"

    def keyed(self, e: Expr, key: Callable[[str], str]) -> str:
        """The code of a constant's comparison key, computed now rather than per row."""
        if key("x") == "x":
            return e.code
        return self.lit(eval(key(e.code), self.ns, {}), e.type).code

    def compare_code(self, a: Expr, b: Expr, key: Callable[[str], str], pyop: str) -> str:
        left = self.keyed(a, key) if a.const and a.value is not None else key("{0}")
        right = self.keyed(b, key) if b.const and b.value is not None else key("{1}")
        return f"({left} {pyop} {right})"

    def comparison(self, node: exp.Binary, op: str, pyop: str) -> Expr:
        a, b = self.expr(node.this), self.expr(node.expression)
        a, b, key = self.compare_types(a, b, node, op)
        return self.apply(self.compare_code(a, b, key, pyop), [a, b], BOOL, node)

    def x_EQ(self, node: exp.EQ) -> Expr:
        return self.comparison(node, "=", "==")

    def x_NEQ(self, node: exp.NEQ) -> Expr:
        return self.comparison(node, "<>", "!=")

    def x_GT(self, node: exp.GT) -> Expr:
        return self.comparison(node, ">", ">")

    def x_GTE(self, node: exp.GTE) -> Expr:
        return self.comparison(node, ">=", ">=")

    def x_LT(self, node: exp.LT) -> Expr:
        return self.comparison(node, "<", "<")

    def x_LTE(self, node: exp.LTE) -> Expr:
        return self.comparison(node, "<=", "<=")

    def null_safe(self, node: exp.Binary, equal: bool) -> Expr:
        a, b = self.expr(node.this), self.expr(node.expression)
        a, b, key = self.compare_types(a, b, node, "IS DISTINCT FROM" if self.pg else "=")
        fa, la = self.bind(a)
        fb, lb = self.bind(b)

        def is_null(e: Expr, code: str) -> str:  # a constant's NULL-ness is known now (no `1 is None` code)
            return repr(e.value is None) if e.const else f"({code} is None)"
        same = f"({is_null(a, fa)} == {is_null(b, fb)} and ({is_null(a, la)} or {key(la)} == {key(lb)}))"
        e = Expr(same if equal else f"(not {same})", BOOL, old=a.old or b.old)
        return self.fold(e, node) if a.const and b.const else e

    def x_NullSafeEQ(self, node: exp.NullSafeEQ) -> Expr:
        return self.null_safe(node, True)

    def x_NullSafeNEQ(self, node: exp.NullSafeNEQ) -> Expr:
        return self.null_safe(node, False)

    def x_In(self, node: exp.In) -> Expr:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            self.fail(node, "IN (subquery) is not supported in mappings")
        x = self.expr(node.this)
        items = [self.expr(i) for i in node.expressions]
        t = self.common([x, *items], node, "IN") if True else TEXT
        if self.pg:
            for i, it in zip(node.expressions, items, strict=True):
                self.compare_types(x, it, i, "=")
        xs = self.convert(x, t, node, False) if x.type.kind != t.kind else x
        conv = [self.convert(it, t, n, False) if it.type.kind != t.kind else it
                for n, it in zip(node.expressions, items, strict=True)]
        key = self.key_of(t, "IN", node)
        if all(c.const for c in conv):
            values = [c.value for c in conv]
            keyed = tuple(None if v is None else self.fold(Expr(key(self.lit(v, t).code), t), node).value
                          for v in values)
            if None not in keyed:
                try:
                    name = self.fn(frozenset(keyed), "set")
                    return self.apply(f"({key('{0}')} in {name})", [xs], BOOL, node)
                except TypeError:
                    pass
            name = self.fn(keyed, "tuple")
            return self.apply(f"{self.fn(rt.in_list)}({key('{0}')}, {name})", [xs], BOOL, node)
        fx, lx = self.bind(xs)
        parts = []
        for c in conv:
            parts.append(f"(None if {c.code} is None else {key('_v')})".replace("_v", c.code) if c.const else
                         f"(None if (_i := {c.code}) is None else {key('_i')})")
        t_items = self.tmp()
        code = (f"(None if {fx} is None else {self.fn(rt.in_list)}({key(lx)}, ({', '.join(parts)},)))")
        del t_items
        return Expr(code, BOOL, old=xs.old or any(c.old for c in conv))

    def x_Between(self, node: exp.Between) -> Expr:
        x = self.expr(node.this)
        lo, hi = self.expr(node.args["low"]), self.expr(node.args["high"])
        if node.args.get("symmetric"):
            self.fail(node, "BETWEEN SYMMETRIC is not supported in mappings")
        fx, lx = self.bind(x)
        xa = replace(x, code=fx)
        xb = replace(x, code=lx)
        a1, b1, k1 = self.compare_types(xa, lo, node, ">=")
        ge = self.apply(self.compare_code(a1, b1, k1, ">="), [a1, b1], BOOL, node)
        a2, b2, k2 = self.compare_types(xb, hi, node, "<=")
        le = self.apply(self.compare_code(a2, b2, k2, "<="), [a2, b2], BOOL, node)
        fa, la = self.bind(ge)
        fb, lb = self.bind(le)
        e = Expr(f"(False if {fa} is False or {fb} is False else (None if {la} is None or {lb} is None else True))",
                 BOOL, old=x.old or lo.old or hi.old)
        return self.fold(e, node) if x.const and lo.const and hi.const else e

    def like(self, node: exp.Expr, escape: exp.Expr | None, ilike: bool) -> Expr:
        assert isinstance(node, exp.Like | exp.ILike)
        s, p = self.expr(node.this), self.expr(node.expression)
        esc: str | None = "\\"
        if escape is not None:
            ee = self.expr(escape)
            if not ee.const or not isinstance(ee.value, str) or len(ee.value) > 1:
                self.fail(escape, "ESCAPE must be a constant single character")
            esc = ee.value or None
        for side in (s, p):
            if self.pg and side.type.kind not in ("text", "char", "unknown", "null"):
                self.fail(node, f"operator does not exist: {s.type.show()} {'~~*' if ilike else '~~'} "
                                f"{p.type.show()}")
        s = self.to_text(s, node, "LIKE", strip_char=False)
        p = self.to_text(p, node, "LIKE", strip_char=False)
        if self.pg:
            flags = re.IGNORECASE if ilike else 0
            code = f"{self.fn(rt.like)}({{0}}, {{1}}, {esc!r}, {int(flags)})"
            e = self.apply(code, [s, p], BOOL, node)
        else:
            coll = (s.type.collation or "utf8mb4_general_ci").lower()
            if coll.endswith("_bin") or coll == "binary":
                e = self.apply(f"{self.fn(rt.like)}({{0}}, {{1}}, {esc!r})", [s, p], BOOL, node)
            else:
                k = self.fn(rt.general_ci_like_key)
                e = self.apply(f"{self.fn(rt.like)}({k}({{0}}), {k}({{1}}), {esc!r})", [s, p], BOOL, node)
        if node.args.get("negate"):
            e = self.apply("(not {0})", [e], BOOL, node)
        return e

    def x_Like(self, node: exp.Like) -> Expr:
        return self.like(node, None, False)

    def x_ILike(self, node: exp.ILike) -> Expr:
        if not self.pg:
            self.fail(node, "ILIKE is PostgreSQL's; in MySQL LIKE follows the column's collation")
        return self.like(node, None, True)

    def x_Escape(self, node: exp.Escape) -> Expr:
        inner = node.this
        if isinstance(inner, exp.Not):
            return self.apply("(not {0})", [self.x_Escape(exp.Escape(this=inner.this, expression=node.expression))],
                              BOOL, node)
        if not isinstance(inner, exp.Like | exp.ILike):
            self.fail(node, "ESCAPE only goes with LIKE")
        return self.like(inner, node.expression, isinstance(inner, exp.ILike))

    # -- conditional --

    def x_Case(self, node: exp.Case) -> Expr:
        subject = node.args.get("this")
        ifs = node.args.get("ifs") or []
        default = node.args.get("default")
        results = [self.expr(i.args["true"]) for i in ifs]
        dflt = self.expr(default) if default is not None else self.lit(None, NULL)
        t = self.common([*results, dflt], node, "CASE")
        results = [self.convert(r, t, i, False) if r.type.kind != t.kind else r
                   for i, r in zip(ifs, results, strict=True)]
        dflt = self.convert(dflt, t, node, False) if dflt.type.kind != t.kind else dflt
        conds: list[Expr] = []
        if subject is not None:
            x = self.expr(subject)
            first, later = self.bind(x)
            for n, i in enumerate(ifs):
                xi = replace(x, code=first if n == 0 else later)
                v = self.expr(i.this)
                a, b, key = self.compare_types(xi, v, i, "=")
                conds.append(self.apply(self.compare_code(a, b, key, "=="), [a, b], BOOL, i))
            if not ifs:
                self.fail(node, "CASE needs WHEN")
        else:
            conds = [self.condition(i.this, "CASE/WHEN") for i in ifs]
        code = dflt.code
        for c, r in reversed(list(zip(conds, results, strict=True))):
            code = f"({r.code} if {c.code} is True else {code})"
        e = Expr(code, t, old=any(x.old for x in (*conds, *results, dflt)))
        if all(x.const for x in (*conds, *results, dflt)):
            return self.fold(e, node)
        return e

    def x_If(self, node: exp.If) -> Expr:
        cond = self.condition(node.this, "IF")
        a = self.expr(node.args["true"])
        b = self.expr(node.args["false"]) if node.args.get("false") is not None else self.lit(None, NULL)
        t = self.common([a, b], node, "IF")
        a = self.convert(a, t, node, False) if a.type.kind != t.kind else a
        b = self.convert(b, t, node, False) if b.type.kind != t.kind else b
        e = Expr(f"({a.code} if {cond.code} is True else {b.code})", t, old=cond.old or a.old or b.old)
        return self.fold(e, node) if cond.const and a.const and b.const else e

    def x_Coalesce(self, node: exp.Coalesce) -> Expr:
        args = [self.expr(node.this), *[self.expr(x) for x in node.expressions]]
        t = self.common(args, node, "COALESCE")
        args = [self.convert(a, t, node, False) if a.type.kind != t.kind else a for a in args]
        code = args[-1].code
        for a in reversed(args[:-1]):
            if a.const:
                code = a.code if a.value is not None else code
                continue
            v = self.tmp()
            code = f"({v} if ({v} := {a.code}) is not None else {code})"
        e = Expr(code, t, old=any(a.old for a in args))
        return self.fold(e, node) if all(a.const for a in args) else e

    def x_Nullif(self, node: exp.Nullif) -> Expr:
        a, b = self.expr(node.this), self.expr(node.expression)
        a2, b2, key = self.compare_types(a, b, node, "=")
        if b2.const and b2.value is None:
            return a2
        fa, la = self.bind(a2)
        fb, lb = self.bind(b2)
        test = f"{key(la)} == {self.keyed(b2, key)}" if b2.const else \
            f"({fb}) is not None and {key(la)} == {key(lb)}"
        e = Expr(f"(None if {fa} is None else (None if {test} else {la}))",
                 a2.type if a2.type.kind not in ("unknown", "null") else TEXT, old=a.old or b.old)
        return self.fold(e, node) if a.const and b.const else e

    def greatest(self, node: exp.Func, pick: str) -> Expr:
        args = [self.expr(node.this), *[self.expr(x) for x in node.expressions]]
        t = self.common(args, node, "GREATEST/LEAST")
        args = [self.convert(a, t, node, False) if a.type.kind != t.kind else a for a in args]
        key = self.key_of(t, "<", node)
        keyfn = eval(f"lambda c: {key('c')}", self.ns) if t.kind in ("text", "char") else None
        helper = _greatest_least(pick, keyfn, ignore_nulls=self.pg)
        slots = ", ".join(f"{{{i}}}" for i in range(len(args)))
        return self.apply(f"{self.fn(helper)}(({slots},))", args, t,
                          node, strict=False)

    def x_Greatest(self, node: exp.Greatest) -> Expr:
        return self.greatest(node, "max")

    def x_Least(self, node: exp.Least) -> Expr:
        return self.greatest(node, "min")

    # -- strings --

    def x_DPipe(self, node: exp.DPipe) -> Expr:
        a, b = self.expr(node.this), self.expr(node.expression)
        if not self.pg:
            self.fail(node, "|| is logical OR in MySQL; use CONCAT()")
        strs = [x.type.kind in ("text", "char", "unknown", "null") for x in (a, b)]
        if not any(strs):
            self.fail(node, f"operator does not exist: {a.type.show()} || {b.type.show()}")
        parts = []
        for x in (a, b):
            if x.type.kind == "other":
                self.fail(node, f"values of type {x.type.show()} cannot be used in expressions by this bridge "
                                "(only selected as they are, or tested with IS NULL)")
            if x.type.kind in ("text", "char", "unknown", "null"):
                parts.append(self.to_text(x, node, "||") if x.type.kind != "null" else x)
            else:  # anytextcat casts the other operand to text: booleans read 'true'/'false' here
                text = _pg_bool_cast_text if x.type.kind == "bool" else rt.pg_text_of(x.type.kind)
                parts.append(self.apply(text, [x], TEXT, node))
        return self.apply("({0} + {1})", parts, TEXT, node)

    def text_args(self, nodes: Sequence[exp.Expr], node: exp.Expr, fname: str, *,
                  any_type: bool) -> list[Expr]:
        out = []
        for n in nodes:
            e = self.expr(n)
            if e.type.kind == "null":
                out.append(self.lit(None, TEXT))
            elif self.pg and any_type:
                if e.type.kind in ("text", "char"):
                    out.append(e)  # concat() prints CHAR with its padding (the type's output function)
                elif e.type.kind == "unknown":
                    out.append(replace(e, type=TEXT))
                elif e.type.kind == "other":
                    self.fail(n, f"values of type {e.type.show()} cannot be used in expressions by this bridge")
                else:
                    out.append(self.apply(rt.pg_text_of(e.type.kind), [e], TEXT, n))
            else:
                out.append(self.to_text(e, n, fname))
        return out

    def x_Concat(self, node: exp.Concat) -> Expr:
        args = self.text_args(node.expressions, node, "concat", any_type=True)
        helper = rt.pg_concat if self.pg else rt.my_concat
        slots = ", ".join(f"{{{i}}}" for i in range(len(args)))
        return self.apply(f"{self.fn(helper)}([{slots}])", args, TEXT,
                          node, strict=False)

    def x_ConcatWs(self, node: exp.ConcatWs) -> Expr:
        exprs = node.expressions
        args = self.text_args(exprs, node, "concat_ws", any_type=True)
        sep, rest = args[0], args[1:]
        code = f"{self.fn(rt.my_concat_ws)}({{0}}, [{', '.join(f'{{{i + 1}}}' for i in range(len(rest)))}])"
        parts = [sep, *rest]
        # the separator is strict (NULL separator -> NULL), the values are not
        if sep.const and sep.value is None:
            return self.lit(None, TEXT)
        fs, ls = self.bind(sep)
        inner = code.format(ls, *[p.code for p in rest])
        guarded = inner if sep.const else f"(None if {fs} is None else {inner})"  # no `'-' is None` in the code
        e = Expr(guarded, TEXT, old=any(p.old for p in parts))
        return self.fold(e, node) if all(p.const for p in parts) else e

    def x_Upper(self, node: exp.Upper) -> Expr:
        arg = self.to_text(self.expr(node.this), node, "upper")
        return self.apply(f"({{0}}.upper() if {{0}}.isascii() else {self.fn(rt.pg_upper)}({{0}}))", [arg], TEXT, node)

    def x_Lower(self, node: exp.Lower) -> Expr:
        arg = self.to_text(self.expr(node.this), node, "lower")
        return self.apply(f"({{0}}.lower() if {{0}}.isascii() else {self.fn(rt.pg_lower)}({{0}}))", [arg], TEXT, node)

    def x_Length(self, node: exp.Length) -> Expr:
        e = self.to_text(self.expr(node.this), node, "length")
        if not self.pg and node.args.get("binary"):
            return self.apply(rt.my_octet_length, [e], INT, node)
        return self.apply("len({0})", [e], INT, node)

    def x_Anonymous(self, node: exp.Anonymous) -> Expr:
        name = str(node.this).lower()
        args = node.expressions
        if name == "octet_length" and len(args) == 1:
            e = self.to_text(self.expr(args[0]), node, name, strip_char=False)
            return self.apply(rt.my_octet_length, [e], INT, node)
        if name == "mid" and not self.pg and len(args) in (2, 3):
            return self.substring(node, args[0], args[1], args[2] if len(args) == 3 else None)
        self.fail(node, f"function {name}() is not supported in mappings")

    def x_Trim(self, node: exp.Trim) -> Expr:
        where = str(node.args.get("position") or "BOTH").upper()
        arg = self.expr(node.this)
        s = self.to_text(arg, node, "trim")
        chars_node = node.args.get("expression")
        chars = self.to_text(self.expr(chars_node), node, "trim") if chars_node is not None else self.lit(" ", TEXT)
        if node.args.get("collation"):
            self.fail(node, "TRIM ... COLLATE is not supported in mappings")
        if self.pg and chars.const and isinstance(chars.value, str):
            method = {"LEADING": "lstrip", "TRAILING": "rstrip"}.get(where, "strip")
            if arg.type.kind == "char" and chars.value == " " and not arg.const:
                # char -> text drops trailing spaces (rstrip), which trimming spaces does anyway: one call
                method = "rstrip" if method == "rstrip" else "strip"
                return self.apply(f"{{0}}.{method}(' ')", [replace(arg, type=s.type)], TEXT, node)
            return self.apply(f"{{0}}.{method}({chars.value!r})", [s], TEXT, node)
        helper = rt.pg_trim if self.pg else rt.my_trim
        return self.apply(f"{self.fn(helper)}({{0}}, {{1}}, {where!r})", [s, chars], TEXT, node)

    def substring(self, node: exp.Expr, s_node: exp.Expr, start: exp.Expr | None,
                  length: exp.Expr | None) -> Expr:
        s = self.to_text(self.expr(s_node), node, "substring")
        st = self.to_int(self.expr(start), node, "substring") if start is not None else self.lit(1, INT)
        args = [s, st]
        if length is not None:
            args.append(self.to_int(self.expr(length), node, "substring"))
        helper = rt.pg_substr if self.pg else rt.my_substr
        return self.apply(helper, args, TEXT, node)

    def x_Substring(self, node: exp.Substring) -> Expr:
        return self.substring(node, node.this, node.args.get("start"), node.args.get("length"))

    def x_Replace(self, node: exp.Replace) -> Expr:
        args = [self.to_text(self.expr(n), node, "replace")
                for n in (node.this, node.expression, node.args["replacement"])]
        return self.apply(rt.replace, args, TEXT, node)

    def x_Pad(self, node: exp.Pad) -> Expr:
        left = bool(node.args.get("is_left"))
        fname = "lpad" if left else "rpad"
        s = self.to_text(self.expr(node.this), node, fname)
        n = self.to_int(self.expr(node.expression), node, fname)
        fill_node = node.args.get("fill_pattern")
        if fill_node is None and not self.pg:
            self.fail(node, f"{fname.upper()} needs three arguments in MySQL")
        fill = self.to_text(self.expr(fill_node), node, fname) if fill_node is not None else self.lit(" ", TEXT)
        if self.pg:
            helper: Callable[..., Any] = rt.pg_lpad if left else rt.pg_rpad
        else:
            helper = rt.my_lpad if left else rt.my_rpad
        return self.apply(helper, [s, n, fill], TEXT, node)

    def x_Left(self, node: exp.Left) -> Expr:
        s = self.to_text(self.expr(node.this), node, "left")
        n = self.to_int(self.expr(node.expression), node, "left")
        return self.apply(rt.pg_left if self.pg else rt.my_left, [s, n], TEXT, node)

    def x_Right(self, node: exp.Right) -> Expr:
        s = self.to_text(self.expr(node.this), node, "right")
        n = self.to_int(self.expr(node.expression), node, "right")
        return self.apply(rt.pg_right if self.pg else rt.my_right, [s, n], TEXT, node)

    def x_StrPosition(self, node: exp.StrPosition) -> Expr:
        if node.args.get("position") is not None or node.args.get("occurrence") is not None:
            self.fail(node, "POSITION/LOCATE with a start position is not supported in mappings")
        s = self.to_text(self.expr(node.this), node, "position")
        sub = self.to_text(self.expr(node.args["substr"]), node, "position")
        if self.pg:
            return self.apply(rt.pg_position, [s, sub], INT, node)
        k = self.fn(rt.general_ci_like_key)
        return self.apply(f"({k}({{0}}).find({k}({{1}})) + 1)", [s, sub], INT, node)

    # -- numbers --

    def numeric_arg(self, node: exp.Expr, fname: str) -> Expr:
        e = self.expr(node)
        if e.type.kind == "unknown":
            e = self.convert(e, DEC if self.pg else FLOAT, node, False)
        if not self.pg and e.type.kind in ("text", "char"):
            e = self.apply(rt.my_str_to_float, [e], FLOAT, node)
        if not e.type.is_numeric and e.type.kind != "null":
            self.fail(node, f"function {fname}({e.type.show()}) does not exist")
        return e

    def x_Abs(self, node: exp.Abs) -> Expr:
        e = self.numeric_arg(node.this, "abs")
        return self.apply("abs({0})", [e], e.type, node)

    def x_Round(self, node: exp.Round) -> Expr:
        e = self.numeric_arg(node.this, "round")
        places_node = node.args.get("decimals")
        places = self.to_int(self.expr(places_node), node, "round") if places_node is not None else self.lit(0, INT)
        if e.type.kind == "float":
            if places_node is not None and self.pg:
                self.fail(node, "function round(double precision, integer) does not exist (cast to numeric)")
            return self.apply("float(round({0}, {1}))", [e, places], FLOAT, node)
        if e.type.kind == "int":
            if self.pg:
                # round(integer) resolves to round(double precision); round(integer, n) to numeric
                if places_node is None:
                    return self.apply("float({0})", [e], FLOAT, node)
                e = self.convert(e, DEC, node, False)
            else:
                return self.apply("int(" + self.fn(rt.pg_round) + "(Decimal({0}), {1}))", [e, places], INT, node)
        return self.apply(rt.pg_round, [e, places], DEC, node)

    def x_Ceil(self, node: exp.Ceil) -> Expr:
        return self.ceil_floor(node, rt.dec_ceil, "ceil")

    def x_Floor(self, node: exp.Floor) -> Expr:
        return self.ceil_floor(node, rt.dec_floor, "floor")

    def ceil_floor(self, node: exp.Func, fn: Callable[[Decimal], Decimal], name: str) -> Expr:
        if node.args.get("decimals") is not None:
            self.fail(node, f"{name} with decimals is not supported in mappings")
        e = self.numeric_arg(node.this, name)
        if e.type.kind == "float":
            import math
            return self.apply(f"float({self.fn(getattr(math, name))}({{0}}))", [e], FLOAT, node)
        if e.type.kind == "int":  # PostgreSQL resolves ceil(integer) to ceil(double precision)
            return self.apply("float({0})" if self.pg else "{0}", [e], FLOAT if self.pg else INT, node)
        if self.pg:
            return self.apply(fn, [e], DEC, node)
        return self.apply(f"int({self.fn(fn)}({{0}}))", [e], INT, node)

    # -- dates --

    def date_arg(self, node: exp.Expr, fname: str, kinds: tuple[str, ...] = ("date", "ts", "tstz")) -> Expr:
        e = self.expr(node)
        if e.type.kind == "unknown":
            e = self.convert(e, TS if "ts" in kinds else DATE, node, False)
        if not self.pg and e.type.kind in ("text", "char"):
            e = self.apply(rt.my_to_ts, [e], TS, node)
        if not self.pg and e.type.kind == "int":
            e = self.apply(rt.my_int_to_date, [e], DATE, node)
        if e.type.kind not in (*kinds, "null"):
            self.fail(node, f"function {fname}({e.type.show()}) does not exist")
        return e

    def x_Extract(self, node: exp.Extract) -> Expr:
        unit = node.this.name.upper() if isinstance(node.this, exp.Var | exp.Identifier | exp.Literal) else ""
        unit = {"YEARS": "YEAR", "MONTHS": "MONTH", "DAYS": "DAY", "DAYOFWEEK": "DOW",
                "DAYOFYEAR": "DOY"}.get(unit, unit)
        if unit not in ("YEAR", "MONTH", "DAY", "QUARTER", "DOW", "ISODOW", "DOY", "WEEK", "HOUR", "MINUTE", "SECOND",
                        "EPOCH"):
            self.fail(node, f"EXTRACT({unit}) is not supported in mappings")
        e = self.date_arg(node.expression, "extract", ("date", "ts", "tstz", "time"))
        if e.type.kind == "date" and unit in ("HOUR", "MINUTE", "SECOND") and self.pg:
            self.fail(node, f'unit "{unit.lower()}" not supported for type date')
        if self.pg:
            if self.called_as(node) == "date_part":  # date_part() is the float8 form of EXTRACT
                return self.apply(f"float({self.fn(rt.pg_extract)}({unit!r}, {{0}}))", [e], FLOAT, node)
            return self.apply(f"{self.fn(rt.pg_extract)}({unit!r}, {{0}})", [e], DEC, node)
        if unit in ("SECOND",):
            return self.apply("{0}.second", [e], INT, node)
        if unit in ("DOW", "ISODOW", "EPOCH", "DOY"):
            self.fail(node, f"EXTRACT({unit}) is not supported in MySQL mappings")
        return self.apply(f"int({self.fn(rt.pg_extract)}({unit!r}, {{0}}))", [e], INT, node)

    def called_as(self, node: exp.Expr) -> str:
        """The function name the mapping's text used for `node` (sqlglot maps synonyms to one node)."""
        starts = [int(n.meta["start"]) for n in node.walk() if isinstance(n, exp.Expr) and n.meta
                  and "start" in n.meta]
        if not starts:
            return ""
        head = self.text[:min(starts)]
        m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*(?:'[^']*'\s*,\s*)?$", head)
        return m.group(1).lower() if m else ""

    def part(self, node: exp.Func, attr: str) -> Expr:
        e = self.date_arg(node.this, attr)
        return self.apply("{0}." + attr, [e], INT, node)

    def x_Year(self, node: exp.Year) -> Expr:
        return self.part(node, "year")

    def x_Month(self, node: exp.Month) -> Expr:
        return self.part(node, "month")

    def x_Day(self, node: exp.Day) -> Expr:
        return self.part(node, "day")

    x_DayOfMonth = x_Day

    def x_Quarter(self, node: exp.Quarter) -> Expr:
        e = self.date_arg(node.this, "quarter")
        return self.apply("(({0}.month - 1) // 3 + 1)", [e], INT, node)

    def x_TsOrDsToDate(self, node: exp.TsOrDsToDate) -> Expr:
        if node.args.get("format") is not None:
            self.fail(node, "DATE() with a format is not supported in mappings")
        e = self.date_arg(node.this, "date")
        if e.type.kind == "date":
            return e
        return self.apply("{0}.date()", [e], DATE, node)

    def x_TsOrDsToTimestamp(self, node: exp.TsOrDsToTimestamp) -> Expr:
        e = self.date_arg(node.this, "timestamp")
        return e

    def fmt_arg(self, node: exp.Expr, fname: str) -> str:
        fmt_node = node.args.get("format")
        if not isinstance(fmt_node, exp.Literal) or not fmt_node.is_string:
            self.fail(node, f"the format of {fname} must be a constant string")
        fmt = str(fmt_node.this)
        try:
            rt.parse_format(fmt)
        except ValueError as err:
            original = self.original(fmt_node)
            self.fail(fmt_node, f"{fname} format {original}: {err}")
        return fmt

    def original(self, node: exp.Expr) -> str:
        """A string literal as the mapping wrote it (sqlglot rewrites date formats)."""
        meta = node.meta
        if meta and "start" in meta and "end" in meta:
            return self.text[int(meta["start"]):int(meta["end"]) + 1]
        offset = _node_offset(node)
        m = re.compile(r"'(?:[^']|'')*'").search(self.text, offset or 0)
        return m.group() if m else repr(node.name)

    def x_StrToDate(self, node: exp.StrToDate) -> Expr:
        fname = "to_date" if self.pg else "str_to_date"
        fmt = self.fmt_arg(node, fname)
        s = self.expr(node.this)
        if self.pg and s.type.kind not in ("text", "char", "unknown", "null"):
            self.fail(node, f"function to_date({s.type.show()}, unknown) does not exist (write "
                            f"to_date({node.this.sql(dialect='postgres')}::text, ...))")
        s = self.to_text(s, node, fname)
        helper = rt.pg_to_date_fmt if self.pg else rt.my_str_to_date
        if s.const:  # folded now: no memo needed
            return self.apply(f"{self.fn(helper)}({{0}}, {fmt!r})", [s], DATE, node)
        # A column holds a few thousand distinct days: each is parsed once (see rt.memoized). The legacy
        # TO_DATE(integer_column::text, ...) is remembered by the integer, saving its conversion to text.
        def parse(text: str) -> date | None:
            return helper(text, fmt)

        def parse_int(n: int) -> date | None:
            return helper(str(n), fmt)

        number = self.int_as_text(node.this)
        if number is not None:
            memo_i, compute_i = rt.memoized(parse_int, int)
            return self.apply(f"(({self.fn(memo_i, 'memo')}.get({{0}}) if {{0}}.__class__ is int else None) "
                              f"or {self.fn(compute_i)}({{0}}))", [number], DATE, node)
        memo, compute = rt.memoized(parse, str)
        return self.apply(f"({self.fn(memo, 'memo')}.get({{0}}) or {self.fn(compute)}({{0}}))", [s], DATE, node)

    def int_as_text(self, node: exp.Expr) -> Expr | None:
        """The integer `x` of a PostgreSQL ``x::text`` (whose text is `str(x)`), or None for anything else.

        Compiles `x` again: only called after the cast itself compiled without error."""
        if not self.pg or not isinstance(node, exp.Cast) or node.args.get("safe"):
            return None
        to = node.args.get("to")
        if not isinstance(to, exp.DataType) or to.expressions:
            return None
        target = type_from_datatype(to, self.dialect)
        if target.kind != "text" or target.length is not None:
            return None
        x = self.expr(node.this)
        return x if x.type.kind == "int" and not x.const and rt.pg_text_of("int") is str else None

    def x_StrToTime(self, node: exp.StrToTime) -> Expr:
        fname = "to_timestamp" if self.pg else "str_to_date"
        fmt = self.fmt_arg(node, fname)
        s = self.expr(node.this)
        if self.pg and s.type.kind not in ("text", "char", "unknown", "null"):
            self.fail(node, f"function to_timestamp({s.type.show()}, unknown) does not exist (cast to text)")
        s = self.to_text(s, node, fname)
        if self.pg:
            return self.apply(f"{self.fn(rt.pg_to_ts_fmt)}({{0}}, {fmt!r})", [s], TSTZ, node)
        return self.apply(f"{self.fn(rt.my_str_to_datetime)}({{0}}, {fmt!r})", [s], SqlType("ts", precision=0,
                                                                                            name="datetime"), node)

    def x_TimeToStr(self, node: exp.TimeToStr) -> Expr:
        fname = "to_char" if self.pg else "date_format"
        fmt = self.fmt_arg(node, fname)
        e = self.date_arg(node.this, fname)
        return self.apply(f"{self.fn(rt.format_date)}({{0}}, {fmt!r})", [e], TEXT, node)

    def x_DateDiff(self, node: exp.DateDiff) -> Expr:
        if self.pg:
            self.fail(node, "DATEDIFF is MySQL's; in PostgreSQL subtract dates (date - date gives days)")
        a = self.date_arg(node.this, "datediff")
        b = self.date_arg(node.expression, "datediff")
        a = self.apply("({0}.date() if isinstance({0}, datetime) else {0})", [a], DATE, node)
        b = self.apply("({0}.date() if isinstance({0}, datetime) else {0})", [b], DATE, node)
        return self.apply(rt.date_diff, [a, b], INT, node)

    def date_add(self, node: exp.Func, sign: int) -> Expr:
        if self.pg:
            self.fail(node, "DATE_ADD/DATE_SUB are MySQL's; in PostgreSQL add days to a date with +")
        d = self.date_arg(node.this, "date_add")
        unit_node = node.args.get("unit")
        unit = str(unit_node.name if unit_node is not None else "DAY").upper()
        if unit not in ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR", "HOUR", "MINUTE", "SECOND"):
            self.fail(node, f"INTERVAL unit {unit} is not supported in mappings")
        n = self.to_int(self.expr(node.expression), node, "date_add")
        if sign < 0:
            n = self.apply("(-{0})", [n], INT, node)
        rtype = d.type if unit not in ("HOUR", "MINUTE", "SECOND") else TS
        return self.apply(f"{self.fn(rt.my_date_add)}({{0}}, {{1}}, {unit!r})", [d, n], rtype, node)

    def x_DateAdd(self, node: exp.DateAdd) -> Expr:
        return self.date_add(node, 1)

    def x_DateSub(self, node: exp.DateSub) -> Expr:
        return self.date_add(node, -1)

    def x_Interval(self, node: exp.Interval) -> Expr:
        self.fail(node, "intervals are not supported in mappings" + ("; add days to a date with +" if self.pg else
                                                                     "; use DATE_ADD(date, INTERVAL n unit)"))

    # -- assembling the function --

    def build(self, outputs: list[tuple[OutputColumn, Expr]], where: Expr | None) -> tuple[str, EvalFn, ProjectFn]:
        assert self.table is not None
        # WHERE first, on only the columns it reads: a row outside the filter decodes nothing else.
        where_lines: list[str] = []
        lines: list[str] = []
        for name, i in sorted(self.cur.items(), key=lambda kv: kv[1]):
            (where_lines if name in self.where_cols else lines).extend(self.load(f"n{i}", "d", name))
        if self.old:
            lines.append("    if od is None:")
            lines.append("        " + " = ".join(f"o{i}" for i in self.old.values()) + " = None")
            lines.append("    else:")
            for name, i in sorted(self.old.items(), key=lambda kv: kv[1]):
                lines.extend("    " + x for x in self.load(f"o{i}", "od", name))
        values = []
        for out, e in outputs:
            code = e.code
            if not self.pg and out.type.kind == "bool":
                code = f"(None if (b_ := {code}) is None else int(b_))"
            values.append(code)
        tuple_code = "(" + "".join(v + ", " for v in values) + ")"
        where_line = f"    if not {where.code}:\n        return None\n" if where is not None else ""
        src = ("def evaluate(d, od):\n" + "".join(x + "\n" for x in where_lines) + where_line
               + "".join(x + "\n" for x in lines) + f"    return {tuple_code}\n\n"
               + "def project(d, od):\n" + "".join(x + "\n" for x in where_lines + lines)
               + f"    return {tuple_code}\n")
        ns = dict(self.ns)
        exec(compile(src, f"<mapping {self.file}>", "exec"), ns)
        return src, ns["evaluate"], ns["project"]

    def load(self, var: str, image: str, column: str) -> list[str]:
        t = self.col_types[column]
        dec = decoder_for(t, self.dialect, self.encoding)
        if dec is None:
            out = [f"    {var} = {image}[{column!r}]"]
            if t.kind in ("text", "char"):
                out.append(f"    if {var} == _UNAV: _unav({column!r})")
            return out
        fn = self.fn(dec, "dec")
        # The two decoders every row of a typical table runs, with their common case written out (a call
        # per column and row cost as much as the conversion); anything else still goes to the decoder,
        # which gives the same value or raises the same error.
        if dec is decode_decimal_string:  # a decimal as Debezium's string: Decimal() reads it exactly
            return [f"    {var} = {image}[{column!r}]",
                    f"    if {var} is not None:",
                    f"        if {var}.__class__ is str:",
                    "            try:",
                    f"                {var} = Decimal({var})",
                    "            except InvalidOperation:",
                    f"                {var} = {fn}({var})",
                    "        else:",
                    f"            {var} = {fn}({var})"]
        if dec is decode_timestamptz:  # ISO 8601 in UTC ("Z"): fromisoformat, when it gives UTC
            return [f"    {var} = {image}[{column!r}]",
                    f"    if {var} is not None:",
                    "        try:",
                    f"            v_ = _fromiso({var}) if {var}.__class__ is str else None",
                    "        except ValueError:",
                    "            v_ = None",
                    f"        {var} = v_ if v_ is not None and v_.tzinfo is UTC else {fn}({var})"]
        return [f"    {var} = None if (v_ := {image}[{column!r}]) is None else {fn}(v_)"]


    def single(self, e: Expr) -> Callable[[Row, Row | None], Any]:
        """One expression as its own function, to find which one fails on a row."""
        lines: list[str] = []
        for name, i in sorted(self.cur.items(), key=lambda kv: kv[1]):
            lines.extend(self.load(f"n{i}", "d", name))
        if self.old:
            lines.append("    if od is None:")
            lines.append("        " + " = ".join(f"o{i}" for i in self.old.values()) + " = None")
            lines.append("    else:")
            for name, i in sorted(self.old.items(), key=lambda kv: kv[1]):
                lines.extend("    " + x for x in self.load(f"o{i}", "od", name))
        src = "def one(d, od):\n" + "\n".join(lines) + ("\n" if lines else "") + f"    return {e.code}\n"
        ns = dict(self.ns)
        exec(compile(src, "<mapping expression>", "exec"), ns)
        fn: Callable[[Row, Row | None], Any] = ns["one"]
        return fn


def _unavailable(column: str) -> NoReturn:
    raise EvalError(f"column {column} holds Debezium's unavailable-value placeholder (an unchanged TOAST value "
                    "the bridge never saw); set REPLICA IDENTITY FULL on the table")


def _partial(fn: Callable[..., Any], *extra: Any) -> Callable[[Any], Any]:
    return lambda v: fn(v, *extra)


def _chain(first: Callable[[Any], Any], then: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if then is None:
        return first
    return lambda v: None if (x := first(v)) is None else then(x)


def _typmod(t: SqlType) -> Callable[[Decimal], Decimal] | None:
    if t.precision is None:
        return None
    return lambda d: rt.numeric_typmod(d, t.precision, t.scale)


def _my_typmod(t: SqlType) -> Callable[[Decimal], Decimal] | None:
    if t.precision is None:
        return None
    return lambda d: rt.my_dec_typmod(d, t.precision, t.scale)


def _ts_round(t: SqlType) -> Callable[[datetime], datetime] | None:
    if t.precision is None or t.precision >= 6:
        return None
    return lambda v: rt.pg_ts_round(v, t.precision)


def _varchar_typmod(n: int | None) -> Callable[[str], str] | None:
    if n is None:
        return None
    return lambda s: s[:n]


def _bpchar_typmod(n: int | None, explicit: bool) -> Callable[[str], str] | None:
    if n is None:
        return None

    def bpchar(s: str) -> str:
        if len(s) > n:
            if not explicit and s[n:].strip(" "):
                raise EvalError(f"value too long for type character({n})")
            return s[:n]
        return s.ljust(n)
    return bpchar


def _pg_bool_cast_text(v: bool) -> str:
    return "true" if v else "false"


def _float_to_dec_pg(f: float) -> Decimal:
    # float8 -> numeric goes through 15 significant digits (DBL_DIG), as PostgreSQL prints it
    if f != f:
        return Decimal("NaN")
    return rt.plain(Decimal(f"{f:.15g}"))


def _float_to_dec_my(f: float) -> Decimal:
    return Decimal(repr(f))


def _my_div_dynamic(a: Decimal | int, b: Decimal | int) -> Decimal | None:
    da = a if isinstance(a, Decimal) else Decimal(a)
    db = b if isinstance(b, Decimal) else Decimal(b)
    return rt.my_div(da, db, rt.dscale(da))


def _greatest_least(pick: str, key: Callable[[Any], Any] | None,
                    ignore_nulls: bool) -> Callable[[tuple[Any, ...]], Any]:
    chooser = max if pick == "max" else min

    def choose(values: tuple[Any, ...]) -> Any:
        present = [v for v in values if v is not None]
        if not present or (not ignore_nulls and len(present) != len(values)):
            return None
        return chooser(present, key=key) if key is not None else chooser(present)
    return choose


def _describe(node: exp.Expr, dialect: Dialect) -> str:
    sql = node.sql(dialect=dialect)
    if len(sql) > 60:
        sql = sql[:57] + "..."
    if isinstance(node, exp.Func):
        return f"function {sql}"
    return sql


def compile_mapping(text: str, catalog: Catalog, *, file: str = "<mapping>",
                    encoding: Encoding | None = None) -> CompiledMapping:
    """Parse, check and compile a mapping; `MappingError` lists every problem found."""
    stmt = parse_mapping(text, catalog.dialect, file)
    c = _Compiler(text, catalog, file, encoding or Encoding())
    try:
        outputs, where = c.compile(stmt)
    except _Fail as f:
        c.problems.append(f.problem)
        outputs, where = [], None
    if not c.problems and not outputs:
        c.problems.append(Problem(file, 1, 1, "the select list is empty"))
    if c.problems:
        raise MappingError(sorted(c.problems, key=lambda p: (p.line, p.col)))
    assert c.table is not None
    python, evaluate, project = c.build(outputs, where)
    normalized = stmt.sql(dialect=catalog.dialect, normalize=True)
    fingerprint = hashlib.blake2b(f"{catalog.dialect}\0{normalized}".encode(), digest_size=8).hexdigest()
    columns = tuple(o for o, _ in outputs)
    debug = [(o, c.single(e)) for o, e in outputs]
    where_fn = c.single(where) if where is not None else None

    def explain(d: Row, od: Row | None) -> str:
        """Which expression fails on this row, as 'file:line:col: field: error'."""
        for o, fn in debug:
            try:
                fn(d, od)
            except Exception as err:
                return f"{file}:{o.line}:{o.col}: field {o.name}: {err}"
        if where_fn is not None:
            try:
                where_fn(d, od)
            except Exception as err:
                return f"{file}: WHERE: {err}"
        return ""

    return CompiledMapping(file=file, text=text, dialect=catalog.dialect, table=c.table, columns=columns,
                           evaluate=evaluate, project=project, source_columns=tuple(c.cur), fingerprint=fingerprint,
                           python=python, explain=explain)
