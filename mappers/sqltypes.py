"""SQL types and the source catalog as plain data: what a mapping is checked and compiled against.

Role: the compiler never talks to a database. It is given a `Catalog` (tables -> columns -> `SqlType`),
built either from a live server by `mappers.catalog` or, in tests, benchmarks and `cdc mapper test`
without a server, from CREATE TABLE statements (`Catalog.from_ddl`). A `SqlType` is the source type
reduced to what decides expression semantics: its kind (integer, decimal, text, CHAR, date, ...), its
length/precision/scale, the source's own type name (to pick the Debezium decoding) and, for strings,
its collation (which decides comparisons: code-point order, or MySQL's case-insensitive ones).

Failure story: a type the compiler cannot give exact semantics to becomes kind ``other``: such a
column can be selected (its event value passes through) and tested with IS NULL, and every other use
is refused at load time by the compiler, never evaluated approximately. `Catalog.from_ddl` raises
ValueError on DDL it cannot read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import sqlglot
from sqlglot import exp

Dialect = Literal["postgres", "mysql"]
Kind = Literal["int", "dec", "float", "text", "char", "bool", "date", "ts", "tstz", "time", "unknown", "null",
               "other"]

DIALECTS: tuple[Dialect, ...] = ("postgres", "mysql")

# Collations whose order is the code-point order of the characters, which is what Python compares.
BINARY_COLLATIONS = frozenset({"c", "posix", "c.utf8", "c.utf-8", "ucs_basic", "default", ""})


@dataclass(frozen=True, slots=True)
class SqlType:
    """A type as expression semantics see it.

    `length`: n of CHAR(n)/VARCHAR(n); `precision`/`scale`: of DECIMAL(p,s), or (precision) the
    fractional-second digits of TIME/TIMESTAMP; `name`: the source's base type name (lower case,
    e.g. ``numeric``, ``datetime``, ``timestamp``, ``json``); `unsigned`: MySQL integers;
    `collation`: of strings (None: the database default, taken as code-point order for PostgreSQL's
    C.UTF-8 and as ``utf8mb4_general_ci`` for MySQL).
    """

    kind: Kind
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    name: str = ""
    unsigned: bool = False
    collation: str | None = None

    def show(self) -> str:
        """The type as the source would name it in a message."""
        if self.name:
            return _DISPLAY.get(self.name, self.name)
        return _KIND_NAMES[self.kind]

    @property
    def is_string(self) -> bool:
        return self.kind in ("text", "char")

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("int", "dec", "float")

    @property
    def is_temporal(self) -> bool:
        return self.kind in ("date", "ts", "tstz", "time")


_KIND_NAMES: Mapping[str, str] = {
    "int": "integer", "dec": "numeric", "float": "double precision", "text": "text", "char": "character",
    "bool": "boolean", "date": "date", "ts": "timestamp", "tstz": "timestamp with time zone",
    "time": "time", "unknown": "unknown", "null": "unknown", "other": "other",
}

_DISPLAY: Mapping[str, str] = {
    "bpchar": "character", "char": "character", "int": "integer", "int4": "integer", "int2": "smallint",
    "int8": "bigint", "varchar": "character varying", "float8": "double precision",
    "timestamptz": "timestamp with time zone", "timestamp": "timestamp", "bool": "boolean",
}

INT = SqlType("int", name="integer")
BIGINT = SqlType("int", name="bigint")
DEC = SqlType("dec", name="numeric")
FLOAT = SqlType("float", name="double precision")
TEXT = SqlType("text", name="text")
BOOL = SqlType("bool", name="boolean")
DATE = SqlType("date", name="date")
TS = SqlType("ts", name="timestamp")
TSTZ = SqlType("tstz", name="timestamp with time zone")
TIME = SqlType("time", name="time")
UNKNOWN = SqlType("unknown", name="unknown")
NULL = SqlType("null", name="unknown")

_T = exp.DataType.Type
_INTS = {_T.TINYINT, _T.SMALLINT, _T.MEDIUMINT, _T.INT, _T.BIGINT, _T.UTINYINT, _T.USMALLINT, _T.UMEDIUMINT,
         _T.UINT, _T.UBIGINT, _T.SERIAL, _T.SMALLSERIAL, _T.BIGSERIAL, _T.YEAR}
_DECS = {_T.DECIMAL, _T.UDECIMAL, _T.BIGDECIMAL, _T.MONEY, _T.SMALLMONEY}
_FLOATS = {_T.FLOAT, _T.DOUBLE}
_TEXTS = {_T.VARCHAR, _T.NVARCHAR, _T.TEXT, _T.MEDIUMTEXT, _T.LONGTEXT, _T.TINYTEXT, _T.NAME, _T.ENUM, _T.SET,
          _T.CHAR, _T.NCHAR, _T.BPCHAR}


def _params(dt: exp.DataType) -> list[int]:
    out: list[int] = []
    for p in dt.expressions:
        node = p.this if isinstance(p, exp.DataTypeParam) else p
        if isinstance(node, exp.Literal) and not node.is_string:
            with contextlib.suppress(ValueError):
                out.append(int(node.this))
    return out


def type_from_datatype(dt: exp.DataType, dialect: Dialect, name: str = "", collation: str | None = None) -> SqlType:
    """A sqlglot DataType (a column type or a CAST target) as a SqlType."""
    t = dt.this
    params = _params(dt)
    base = name or dt.sql(dialect=dialect).lower().split("(")[0].strip()
    if t in _INTS:
        return SqlType("int", name=base, unsigned=t.name.startswith("U"))
    if t in _DECS:
        if t == _T.MONEY:
            return SqlType("other", name="money")
        return SqlType("dec", precision=params[0] if params else None,
                       scale=params[1] if len(params) > 1 else (0 if params and dialect == "mysql" else None),
                       name=base)
    if t in _FLOATS:
        return SqlType("float", name=base)
    if t in (_T.CHAR, _T.NCHAR, _T.BPCHAR):
        return SqlType("char", length=params[0] if params else 1, name=base, collation=collation)
    if t in _TEXTS:
        return SqlType("text", length=params[0] if params else None, name=base, collation=collation)
    if t == _T.BOOLEAN:
        return SqlType("bool", name=base)
    if t in (_T.DATE, _T.DATE32):
        return SqlType("date", name=base)
    if t in (_T.TIMESTAMPTZ, _T.TIMESTAMPLTZ) and dialect == "postgres":
        return SqlType("tstz", precision=params[0] if params else 6, name=base)
    if t in (_T.TIMESTAMP, _T.DATETIME, _T.DATETIME64, _T.TIMESTAMPNTZ, _T.TIMESTAMPTZ, _T.TIMESTAMPLTZ):
        # MySQL's TIMESTAMP behaves as a DATETIME in the (UTC) session; only its encoding differs.
        return SqlType("ts", precision=params[0] if params else (0 if dialect == "mysql" else 6), name=base)
    if t == _T.TIME:
        return SqlType("time", precision=params[0] if params else (0 if dialect == "mysql" else 6), name=base)
    return SqlType("other", name=base)


def parse_type(text: str, dialect: Dialect, collation: str | None = None) -> SqlType:
    """A type as the server prints it (``character(10)``, ``numeric(15,2)``, ``int(11) unsigned``)."""
    cleaned = text.strip().lower()
    unsigned = cleaned.endswith(" unsigned") or " unsigned " in cleaned
    cleaned = cleaned.replace(" unsigned", "").replace(" zerofill", "")
    if dialect == "mysql" and cleaned.startswith("tinyint(1)"):
        cleaned = "tinyint"
    base = cleaned.split("(")[0].strip()
    if dialect == "postgres" and base in ("timestamp", "time") and "with time zone" in cleaned:
        if base == "time":
            return SqlType("other", name="timetz")
        base = "timestamptz"
    if dialect == "postgres" and base == "timestamp with time zone":
        base = "timestamptz"
    if dialect == "postgres" and base.startswith("time without"):
        base = "time"
    if base.endswith("[]") or cleaned.endswith("]"):
        return SqlType("other", name=cleaned)
    try:
        dt = exp.DataType.build(cleaned, dialect=dialect)
    except (sqlglot.ParseError, ValueError):
        return SqlType("other", name=base)
    st = type_from_datatype(dt, dialect, name=_BASE_ALIASES.get(base, base), collation=collation)
    if unsigned and st.kind == "int":
        return SqlType("int", name=st.name, unsigned=True)
    return st


_BASE_ALIASES = {"character": "bpchar", "character varying": "varchar", "timestamp without time zone": "timestamp",
                 "int4": "integer", "int8": "bigint", "int2": "smallint", "decimal": "numeric",
                 "double precision": "float8"}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: SqlType
    key: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """One table: `schema` is the PostgreSQL schema or the MySQL database."""

    schema: str
    name: str
    columns: tuple[Column, ...]
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.key)


@dataclass(frozen=True, slots=True)
class Catalog:
    """The source tables a mapping may read, keyed by (schema, table)."""

    dialect: Dialect
    tables: dict[tuple[str, str], Table]

    @classmethod
    def of(cls, dialect: Dialect, tables: Iterable[Table]) -> Catalog:
        return cls(dialect, {(t.schema, t.name): t for t in tables})

    def find(self, schema: str | None, name: str) -> list[Table]:
        """Tables named `name` (in `schema` when given); MySQL compares column names without case, and
        table names as the server does on Linux (with case)."""
        if schema is not None:
            t = self.tables.get((schema, name))
            return [t] if t is not None else []
        return [t for (_, n), t in sorted(self.tables.items()) if n == name]

    @classmethod
    def from_ddl(cls, ddl: str, dialect: Dialect, default_schema: str | None = None) -> Catalog:
        """A catalog from CREATE TABLE statements (column types, PRIMARY KEY clauses and inline ones)."""
        default = default_schema or ("public" if dialect == "postgres" else "db")
        tables: list[Table] = []
        for stmt in sqlglot.parse(ddl, read=dialect):
            if not isinstance(stmt, exp.Create) or not isinstance(stmt.this, exp.Schema):
                continue
            tab = stmt.this.this
            if not isinstance(tab, exp.Table):
                raise ValueError("CREATE TABLE without a table name")
            pk: set[str] = set()
            cols: list[tuple[str, SqlType]] = []
            for item in stmt.this.expressions:
                if isinstance(item, exp.ColumnDef):
                    kind = item.args.get("kind")
                    if not isinstance(kind, exp.DataType):
                        raise ValueError(f"column {item.name} has no type")
                    collate = None
                    for c in item.constraints:
                        if isinstance(c.kind, exp.PrimaryKeyColumnConstraint):
                            pk.add(item.name)
                        if isinstance(c.kind, exp.CollateColumnConstraint):
                            collate = c.kind.name
                    cols.append((item.name, parse_type(kind.sql(dialect=dialect), dialect, collate)))
                elif isinstance(item, exp.PrimaryKey):
                    for e in item.expressions:
                        pk.add(e.name)
            tables.append(Table(tab.db or default, tab.name,
                                tuple(Column(n, t, n in pk) for n, t in cols)))
        if not tables:
            raise ValueError("no CREATE TABLE statement found")
        return cls.of(dialect, tables)
