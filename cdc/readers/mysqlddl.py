"""MySQL/MariaDB DDL → table schemas: the binlog reader's schema history, built and changed from DDL text.

Role: the binlog reader keeps, for every table, its definition (`mysqlschema.TableSchema`) at each point
of the binlog, as Debezium's schema history does. At snapshot time `parse_create_table` reads the
server's `SHOW CREATE TABLE` output; afterwards `apply_ddl` applies each statement of a binlog
QueryEvent (CREATE/ALTER/DROP/RENAME/TRUNCATE TABLE, CREATE/ALTER/DROP DATABASE) to the schemas
known so far and says what changed (`DdlResult`). Pure: no I/O, nothing kept between calls.

Normal form: a schema built from a user's DDL equals the one parsed from the server's own
`SHOW CREATE TABLE` afterwards, so a history replayed from the binlog can be checked against the
server. Hence, as MariaDB (and MySQL before 8.0.19) stores them: integers without (M) get the default
display width (`int` → int(11), `int unsigned` → int(10)) whichever flavour wrote the DDL; BOOL →
tinyint(1); ZEROFILL implies UNSIGNED; DECIMAL → decimal(10,0); CHAR/BINARY/BIT → length 1;
YEAR → year(4); FLOAT(p) → float or double by p; REAL/DOUBLE PRECISION/FLOAT8 → double; the
synonyms (INTEGER, INT4, INT8, DEC, NUMERIC, FIXED, LONG VARCHAR, NATIONAL CHAR ...) → base names;
TEXT(n)/BLOB(n) → the smallest text/blob type holding n characters/bytes; CHAR/VARCHAR/TEXT with
CHARACTER SET binary → binary/varbinary/blob; fractional-seconds precision 0 → None; ENUM/SET
members lose their trailing spaces. Character sets:
a column's own CHARACTER SET, else the one its COLLATE names (latin1_swedish_ci → latin1), else the
table's default (which itself comes from the table's options, else the database's default);
`utf8` → `utf8mb3`; ASCII → latin1, UNICODE → ucs2, NATIONAL/NCHAR → utf8mb3. JSON: type `json`
when the DDL says JSON or when a LONGTEXT column carries MariaDB's own `CHECK (json_valid(col))`
(MariaDB's JSON is that alias, and SHOW CREATE TABLE prints it so); its charset is utf8mb4 unless the
DDL gives one. ALTER TABLE follows the server's rules: every column named in DROP/CHANGE/MODIFY/
RENAME COLUMN is looked up among the table's columns before the statement (so renames may swap), new
columns are appended and then FIRST/AFTER moves apply in statement order (names after the change),
columns without their own charset take the table's default after the statement, CONVERT TO
CHARACTER SET converts every character column (and grows TEXT types so they keep their capacity in
characters), primary-key columns are NOT NULL, dropping a column removes it from the primary key.

How it parses: sqlglot's MySQL tokenizer (quoting, escapes, comments, introducers), with a grammar of
our own for the part of the DDL that defines columns; executable comments (`/*!50100 ...*/`,
`/*M!100301 ...*/`) are unwrapped first, as the server ran them. sqlglot's parser is not used: it
maps MySQL types onto a cross-dialect set (INT8 UNSIGNED → tinyint, LONG → bigint, REAL → float),
fails on POINT, INET6, COMPRESSED and WITH SYSTEM VERSIONING, and parses CONVERT TO CHARACTER SET,
ALTER ONLINE/IGNORE TABLE and ADD COLUMN (a, b) only as opaque commands: each would be a silently
wrong or a stopped table here.

Failure story: `parse_create_table` raises `DdlError` (a `Permanent` error) naming the table, the
statement and where it could not be read. `apply_ddl` never raises for a statement: an unparseable
statement, an ALTER of a table missing from `schemas`, or an ALTER that does not fit the known schema
(a column that is not there) stops only the tables it touches, each reported in `DdlResult.failed`
with the statement, the reason and what the operator can do (re-snapshot the table); other tables in
the same statement still change. When even the table names cannot be read from a statement, a regex
over the raw text finds them. Known limits: a table WITH SYSTEM VERSIONING (hidden row_start/row_end
columns) and CREATE TABLE ... SELECT in statement-based logging (the columns come from a query) are
reported as failed; TIMESTAMP columns without NULL/NOT NULL are nullable, as with
explicit_defaults_for_timestamp=ON (the default of MySQL 8 and MariaDB 10.10+); sql_mode ANSI_QUOTES
is honoured for names but Oracle-mode types (VARCHAR2, NUMBER) are reported as failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import ClassVar, NamedTuple, NoReturn

from sqlglot import TokenType
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import TokenError

from cdc.errors import Permanent
from cdc.readers.mysqlschema import ColumnDef, TableSchema

__all__ = ["DdlError", "DdlFailure", "DdlResult", "apply_ddl", "charset_of_collation", "is_schema_statement",
           "normalise_charset", "parse_create_table"]

Key = tuple[str, str]


class DdlError(Permanent):
    """A DDL statement that cannot be turned into a table schema; the message names the table, the
    statement and the reason."""


class DdlFailure(NamedTuple):
    """A table whose schema history stops at this statement, and why (a message for the operator)."""

    db: str
    table: str
    message: str


@dataclass(frozen=True, slots=True)
class DdlResult:
    """What one statement did to the schema history.

    `changed`: tables created, altered or renamed into, with their new schema (a schema equal to the
    one before is not listed). `dropped`: tables that no longer exist after the statement: dropped
    (also ones it names that the history did not know: MariaDB logs DROP TABLE even when some of its
    tables are missing) or renamed away. `renamed`: (old, new) pairs in statement order, for callers
    that follow a table across a rename; the old key is in `dropped` (unless another table took its
    name), the new one in `changed` (unless it is in `failed`). `truncated`: tables emptied by
    TRUNCATE (no schema change). `db_charsets`: databases created or altered whose default charset
    is known. `dropped_databases`: databases dropped (their known tables are in `dropped`). `failed`:
    tables whose history stops at this statement, see `DdlFailure`; they are in neither `changed`
    nor `dropped`.
    """

    changed: Mapping[Key, TableSchema] = field(default_factory=dict)
    dropped: tuple[Key, ...] = ()
    renamed: tuple[tuple[Key, Key], ...] = ()
    truncated: tuple[Key, ...] = ()
    db_charsets: Mapping[str, str] = field(default_factory=dict)
    dropped_databases: tuple[str, ...] = ()
    failed: tuple[DdlFailure, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the statement changes nothing the history keeps."""
        return not (self.changed or self.dropped or self.renamed or self.truncated or self.db_charsets
                    or self.dropped_databases or self.failed)

    def applied_to(self, schemas: Mapping[Key, TableSchema],
                   db_charsets: Mapping[str, str]) -> tuple[dict[Key, TableSchema], dict[str, str]]:
        """The history after this statement: new copies of `schemas` and `db_charsets`. Failed tables
        keep their old schema here; the caller decides what a stopped table means for it."""
        tables = dict(schemas)
        for key in self.dropped:
            tables.pop(key, None)
        tables.update(self.changed)
        charsets = dict(db_charsets)
        for db in self.dropped_databases:
            charsets.pop(db, None)
        charsets.update(self.db_charsets)
        return tables, charsets


_NOTHING = DdlResult(changed=MappingProxyType({}), db_charsets=MappingProxyType({}))  # shared: read-only

# ---------------------------------------------------------------------------------------------------
# Character sets

# Every character set MariaDB 10.11 and MySQL 8 know, with its longest character in bytes (TEXT sizing).
_MBMAXLEN: dict[str, int] = {
    "armscii8": 1, "ascii": 1, "big5": 2, "binary": 1, "cp1250": 1, "cp1251": 1, "cp1256": 1, "cp1257": 1,
    "cp850": 1, "cp852": 1, "cp866": 1, "cp932": 2, "dec8": 1, "eucjpms": 3, "euckr": 2, "gb18030": 4,
    "gb2312": 2, "gbk": 2, "geostd8": 1, "greek": 1, "hebrew": 1, "hp8": 1, "keybcs2": 1, "koi8r": 1,
    "koi8u": 1, "latin1": 1, "latin2": 1, "latin5": 1, "latin7": 1, "macce": 1, "macroman": 1, "sjis": 2,
    "swe7": 1, "tis620": 1, "ucs2": 2, "ujis": 3, "utf16": 4, "utf16le": 4, "utf32": 4, "utf8mb3": 3,
    "utf8mb4": 4,
}
# Longest first, so utf16le_general_ci is utf16le and not utf16.
_CHARSET_PREFIXES = sorted([*_MBMAXLEN, "utf8"], key=len, reverse=True)


def normalise_charset(name: str) -> str:
    """A charset name as the server prints it: lower case, `utf8` → `utf8mb3` (its meaning in MySQL 8
    and MariaDB 10.6+)."""
    cs = name.lower()
    return "utf8mb3" if cs == "utf8" else cs


def charset_of_collation(collation: str) -> str | None:
    """The charset a collation belongs to (`latin1_swedish_ci` → latin1, `utf8_bin` → utf8mb3,
    `binary` → binary), or None for a collation that names none (MariaDB's `uca1400_ai_ci`)."""
    col = collation.lower()
    if col == "binary":
        return "binary"
    for cs in _CHARSET_PREFIXES:
        if col.startswith(cs + "_"):
            return normalise_charset(cs)
    return None


# ---------------------------------------------------------------------------------------------------
# Types

_INTEGERS = {"TINYINT": "tinyint", "INT1": "tinyint", "SMALLINT": "smallint", "INT2": "smallint",
             "MEDIUMINT": "mediumint", "INT3": "mediumint", "MIDDLEINT": "mediumint", "INT": "int",
             "INTEGER": "int", "INT4": "int", "BIGINT": "bigint", "INT8": "bigint"}
# (signed, unsigned) display widths the server gives an integer declared without (M).
_DISPLAY_WIDTH = {"tinyint": (4, 3), "smallint": (6, 5), "mediumint": (9, 8), "int": (11, 10), "bigint": (20, 20)}
_SIMPLE = {"TINYTEXT": "tinytext", "MEDIUMTEXT": "mediumtext", "LONGTEXT": "longtext", "TINYBLOB": "tinyblob",
           "MEDIUMBLOB": "mediumblob", "LONGBLOB": "longblob", "DATE": "date", "JSON": "json",
           "GEOMETRY": "geometry", "POINT": "point", "LINESTRING": "linestring", "POLYGON": "polygon",
           "MULTIPOINT": "multipoint", "MULTILINESTRING": "multilinestring", "MULTIPOLYGON": "multipolygon",
           "GEOMETRYCOLLECTION": "geometrycollection", "GEOMCOLLECTION": "geomcollection", "INET4": "inet4",
           "INET6": "inet6", "UUID": "uuid", "VECTOR": "vector", "DATETIME": "datetime",
           "TIMESTAMP": "timestamp", "TIME": "time", "YEAR": "year", "BIT": "bit", "VARBINARY": "varbinary"}
_TEXTS = ("tinytext", "text", "mediumtext", "longtext")
_BLOBS = ("tinyblob", "blob", "mediumblob", "longblob")
_CAPACITY = (255, 65535, 16777215, 4294967295)
_CHARACTER_TYPES = frozenset({"char", "varchar", *_TEXTS, "enum", "set", "json"})
_TO_BINARY = {"char": "binary", "varchar": "varbinary", **dict(zip(_TEXTS, _BLOBS, strict=True))}


def _sized(family: tuple[str, ...], nbytes: int) -> str:
    return next((name for name, cap in zip(family, _CAPACITY, strict=True) if nbytes <= cap), family[-1])


@dataclass(slots=True)
class _ColSpec:
    """A column definition as written, before the table's charset is known."""

    name: str
    base: str
    params: tuple[int, ...] = ()
    values: tuple[str, ...] = ()
    unsigned: bool = False
    zerofill: bool = False
    nullable: bool | None = None
    charset: str | None = None
    collation: str | None = None
    primary: bool = False
    json_check: bool = False
    sized_by: str | None = None  # "text"/"blob" when written TEXT(n)/BLOB(n)
    position: tuple[str, str | None] | None = None  # ("FIRST", None) or ("AFTER", column)

    def resolve(self, table_charset: str | None) -> ColumnDef:
        """The column in normal form, given the table's default charset."""
        base, params = self.base, self.params
        length: int | None = params[0] if params else None
        scale: int | None = params[1] if len(params) > 1 else None
        unsigned = self.unsigned or self.zerofill
        nullable = self.nullable if self.nullable is not None else True
        charset: str | None = None
        if base in _DISPLAY_WIDTH:
            if length is None:
                length = _DISPLAY_WIDTH[base][1 if unsigned else 0]
        elif base == "decimal":
            length, scale = (length if length is not None else 10), (scale if scale is not None else 0)
        elif base == "float" and len(params) == 1:
            # FLOAT(p) picks the storage by precision and keeps no width (MySQL's rule).
            base, length = ("float" if params[0] <= 24 else "double"), None
        elif base in ("bit", "char", "binary") and length is None:
            length = 1
        elif base == "year" and length is None:
            length = 4
        elif base in ("datetime", "timestamp", "time") and length == 0:
            length = None
        if base in _CHARACTER_TYPES:
            charset = self.charset or (charset_of_collation(self.collation) if self.collation else None)
            if base == "json" and charset is None:
                charset = "utf8mb4"
            charset = charset or table_charset
            if self.sized_by == "text":
                base, length = _sized(_TEXTS, (length or 0) * _MBMAXLEN.get(charset or "", 1)), None
            if charset == "binary" and base in _TO_BINARY:
                base, charset = _TO_BINARY[base], None
        elif self.sized_by == "blob":
            base, length = _sized(_BLOBS, length or 0), None
        if base == "longtext" and self.json_check:
            base = "json"
        return ColumnDef(name=self.name, type=base, length=length, scale=scale, unsigned=unsigned,
                         nullable=nullable, charset=charset, values=self.values)


# ---------------------------------------------------------------------------------------------------
# Tokens


class _Lexicon(MySQL):
    """MySQL's tokenizer, minus the multi-word keywords (`CHARACTER SET` would be one token only when
    written with one space) and command mode (which turns all after RENAME into one string)."""

    class Tokenizer(MySQL.Tokenizer):
        COMMANDS: ClassVar[set[TokenType]] = set()
        KEYWORDS = {k: v for k, v in MySQL.Tokenizer.KEYWORDS.items() if " " not in k}


_LEXICON = _Lexicon()
_STRINGS = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING})
_LITERALS = frozenset({TokenType.BIT_STRING, TokenType.HEX_STRING, TokenType.BYTE_STRING})


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # word (keyword or bare name), ident (`quoted`), str, num, lit (b'', x''), intro (_utf8mb4), punct
    text: str
    up: str
    pos: int


def _unwrap_executable_comments(sql: str) -> str:
    """Blank out the markers of `/*!NNNNN ... */` and `/*M!NNNNNN ... */`, keeping what they hold
    (the server that wrote the statement ran it) and every offset."""
    out = list(sql)
    i, n = 0, len(sql)
    quote = ""
    in_exec = False
    while i < n:
        c = sql[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 2
                continue
            if c == quote:
                if i + 1 < n and sql[i + 1] == quote:
                    i += 2
                    continue
                quote = ""
            i += 1
        elif c in "'\"`":
            quote = c
            i += 1
        elif sql.startswith("/*!", i) or sql.startswith("/*M!", i):
            j = i + (3 if sql[i + 2] == "!" else 4)
            while j < n and sql[j].isdigit():
                j += 1
            out[i:j] = " " * (j - i)
            in_exec = True
            i = j
        elif in_exec and sql.startswith("*/", i):
            out[i:i + 2] = "  "
            in_exec = False
            i += 2
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == "#" or (sql.startswith("--", i) and (i + 2 >= n or sql[i + 2] in " \t\r\n")):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        else:
            i += 1
    return "".join(out)


class _Syntax(Exception):
    """The statement does not read as the grammar expects: what was expected, and where."""

    def __init__(self, message: str, pos: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class _Drift(Exception):
    """The statement reads fine but does not fit the schema the history holds (or needs what it cannot
    know), so the table's history cannot follow the server any more."""


def _tokenize(sql: str) -> list[_Tok]:
    if "/*!" in sql or "/*M!" in sql:
        sql = _unwrap_executable_comments(sql)
    try:
        raw = _LEXICON.tokenize(sql)
    except TokenError as e:
        cause = str(e.__cause__ or e).splitlines()[0]
        m = re.fullmatch(r"Missing (.) from (\d+):(\d+)", cause)
        if m:  # sqlglot counts columns from 0
            cause = f"{m[1]} opened at line {m[2]}, column {int(m[3]) + 1} is never closed"
        raise _Syntax(f"cannot split it into tokens: {cause}", None) from None
    toks: list[_Tok] = []
    for t in raw:
        tt, text = t.token_type, t.text
        if tt is TokenType.IDENTIFIER:
            kind = "ident"
        elif tt in _STRINGS:
            kind = "str"
        elif tt in _LITERALS:
            kind = "lit"
        elif tt is TokenType.NUMBER:
            kind = "num"
        elif tt is TokenType.INTRODUCER:
            kind = "intro"
        elif text and (text[0].isalnum() or text[0] in "_$"):
            kind = "word"
        else:
            kind = "punct"
        toks.append(_Tok(kind, text, text.upper() if kind in ("word", "punct") else "", t.start))
    return toks


_SKIP_HEAD = re.compile(r"(?:\s+|/\*(?!!|M!).*?\*/|/\*M?!\d*|#[^\n]*|--(?:[ \t\r][^\n]*)?(?=\n|$))*", re.S)
_HEAD_WORD = re.compile(r"[A-Za-z]+")
_DDL_HEADS = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})


def is_schema_statement(sql: str) -> bool:
    """Cheap test, without tokenizing: can this statement change a table schema or a database
    default? False for BEGIN, COMMIT, SAVEPOINT, SET, GRANT, INSERT, ... (True does not promise it does)."""
    m = _SKIP_HEAD.match(sql)
    w = _HEAD_WORD.match(sql, m.end() if m else 0)
    return w is not None and w.group().upper() in _DDL_HEADS


# ---------------------------------------------------------------------------------------------------
# Grammar


class _Parser:
    __slots__ = ("i", "sql", "toks")

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks = _tokenize(sql)
        while self.toks and self.toks[-1].kind == "punct" and self.toks[-1].text == ";":
            self.toks.pop()
        self.i = 0

    # -- looking and moving
    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if 0 <= j < len(self.toks) else None

    def at(self, *words: str) -> bool:
        for k, w in enumerate(words):
            t = self.peek(k)
            if t is None or t.kind != "word" or t.up != w:
                return False
        return True

    def word_at(self, k: int, word: str) -> bool:
        t = self.peek(k)
        return t is not None and t.kind == "word" and t.up == word

    def at_any(self, words: Iterable[str]) -> bool:
        t = self.peek()
        return t is not None and t.kind == "word" and t.up in words

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            self.fail(f"expected {' '.join(words)}")

    def at_punct(self, p: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.kind == "punct" and t.text == p

    def accept_punct(self, p: str) -> bool:
        if self.at_punct(p):
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        if not self.accept_punct(p):
            self.fail(f"expected '{p}'")

    def next(self) -> _Tok:
        t = self.peek()
        if t is None:
            self.fail("unexpected end of statement")
        self.i += 1
        return t

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def fail(self, message: str) -> NoReturn:
        t = self.peek()
        raise _Syntax(message, t.pos if t is not None else len(self.sql))

    # -- pieces
    def name(self, what: str) -> str:
        t = self.peek()
        # The tokenizer reads "x" as a string; under sql_mode ANSI_QUOTES it is a name, so take it as one.
        if t is not None and t.kind in ("ident", "word", "str"):
            self.i += 1
            return t.text
        self.fail(f"expected {what}")

    def qualified(self, what: str) -> tuple[str | None, str]:
        first = self.name(what)
        if self.accept_punct("."):
            return first, self.name(what)
        return None, first

    def number(self, what: str) -> int:
        t = self.peek()
        if t is None or t.kind != "num" or not t.text.isdigit():
            self.fail(f"expected {what}")
        self.i += 1
        return int(t.text)

    def skip_group(self) -> None:
        """Skip a parenthesised group, nested groups included."""
        self.expect_punct("(")
        depth = 1
        while depth:
            t = self.next()
            if t.kind == "punct":
                depth += (t.text == "(") - (t.text == ")")

    def skip_item(self) -> None:
        """Skip to the ',' or ')' that ends the current list item (not consuming it)."""
        while not self.done() and not (self.at_punct(",") or self.at_punct(")")):
            if self.at_punct("("):
                self.skip_group()
            else:
                self.i += 1

    def group_starts_with(self, word: str) -> bool:
        k = 0
        while self.at_punct("(", k):
            k += 1
        t = self.peek(k)
        return k > 0 and t is not None and t.kind == "word" and t.up == word


def _charset_clause(p: _Parser) -> str | None:
    """After CHARACTER SET / CHARSET / CHAR SET: [=] name; DEFAULT (the database's) gives None."""
    p.accept_punct("=")
    if p.accept("DEFAULT"):
        return None
    return normalise_charset(p.name("a character set name"))


def _at_charset(p: _Parser) -> bool:
    return p.at("CHARSET") or p.at("CHARACTER", "SET") or p.at("CHAR", "SET")


def _accept_charset(p: _Parser) -> bool:
    return p.accept("CHARSET") or p.accept("CHARACTER", "SET") or p.accept("CHAR", "SET")


def _type_params(p: _Parser, what: str) -> tuple[int, ...]:
    if not p.accept_punct("("):
        return ()
    params = [p.number(f"the {what} of the type")]
    while p.accept_punct(","):
        params.append(p.number(f"the {what} of the type"))
    p.expect_punct(")")
    return tuple(params)


def _data_type(p: _Parser, spec: _ColSpec) -> None:
    """Read a data type into `spec` (base name, parameters, values, and what the spelling implies)."""
    t = p.peek()
    if t is None or t.kind != "word":
        p.fail(f"expected the type of column `{spec.name}`")
    w = t.up
    p.i += 1
    if w in _INTEGERS:
        spec.base, spec.params = _INTEGERS[w], _type_params(p, "display width")
    elif w in ("BOOL", "BOOLEAN"):
        spec.base, spec.params = "tinyint", (1,)
    elif w == "SERIAL":
        spec.base, spec.unsigned, spec.nullable = "bigint", True, False
    elif w in ("DECIMAL", "DEC", "NUMERIC", "FIXED"):
        spec.base, spec.params = "decimal", _type_params(p, "precision")
    elif w in ("FLOAT", "FLOAT4"):
        spec.base, spec.params = "float", _type_params(p, "precision")
    elif w in ("DOUBLE", "FLOAT8", "REAL"):
        if w == "DOUBLE":
            p.accept("PRECISION")
        spec.base, spec.params = "double", _type_params(p, "precision")
    elif w in ("CHAR", "CHARACTER", "NCHAR", "NATIONAL", "VARCHAR", "VARCHARACTER", "NVARCHAR"):
        national = w in ("NCHAR", "NATIONAL", "NVARCHAR")
        if w == "NATIONAL" and not (p.accept("CHAR") or p.accept("CHARACTER") or p.at("VARCHAR")
                                    or p.at("VARCHARACTER")):
            p.fail("expected CHAR, CHARACTER or VARCHAR after NATIONAL")
        varying = w in ("VARCHAR", "VARCHARACTER", "NVARCHAR") or p.accept("VARYING") \
            or p.accept("VARCHAR") or p.accept("VARCHARACTER")
        spec.base, spec.params = ("varchar" if varying else "char"), _type_params(p, "length")
        if varying and not spec.params:
            p.fail(f"expected the length of VARCHAR column `{spec.name}`")
        if national:
            spec.charset = "utf8mb3"
    elif w == "BINARY":
        varying = p.accept("VARYING")
        spec.base, spec.params = ("varbinary" if varying else "binary"), _type_params(p, "length")
    elif w == "LONG":
        if p.accept("VARBINARY") or p.accept("BINARY", "VARYING"):
            spec.base = "mediumblob"
        else:
            _ = p.accept("VARCHAR") or p.accept("VARCHARACTER") or p.accept("CHAR", "VARYING") \
                or p.accept("CHARACTER", "VARYING")
            spec.base = "mediumtext"
    elif w in ("TEXT", "BLOB"):
        params = _type_params(p, "length")
        if params:
            spec.base, spec.params, spec.sized_by = w.lower(), params, w.lower()
        else:
            spec.base = w.lower()
    elif w in ("ENUM", "SET"):
        p.expect_punct("(")
        values: list[str] = []
        while True:
            v = p.next()
            if v.kind == "intro":
                v = p.next()
            if v.kind != "str":
                p.i -= 1
                p.fail(f"expected a quoted {w} value")
            values.append(v.text.rstrip(" "))  # the server drops members' trailing spaces
            if not p.accept_punct(","):
                break
        p.expect_punct(")")
        spec.base, spec.values = w.lower(), tuple(values)
    elif w in _SIMPLE:
        spec.base, spec.params = _SIMPLE[w], _type_params(p, "length")
    else:
        p.i -= 1
        p.fail(f"unknown type {t.text!r} for column `{spec.name}`")


def _skip_operand(p: _Parser) -> None:
    """Skip one value of DEFAULT / ON UPDATE: a literal, a function call, a parenthesised expression,
    NEXT VALUE FOR seq, DATE 'x' (the server wants parentheses around anything longer)."""
    while p.accept_punct("-") or p.accept_punct("+"):
        pass
    if p.at_punct("("):
        p.skip_group()
        return
    t = p.next()
    if t.kind == "intro":
        t = p.next()
    if t.kind == "str":
        while (n := p.peek()) is not None and n.kind == "str":  # 'a' 'b' is one string
            p.i += 1
    elif t.kind == "word":
        if t.up == "NEXT" and p.accept("VALUE", "FOR"):
            p.qualified("a sequence name")
        elif (n := p.peek()) is not None and n.kind == "str":  # DATE '2024-01-01'
            p.i += 1
        elif p.at_punct("("):
            p.skip_group()
        elif p.accept_punct("."):  # a qualified function name
            p.name("a function name")
            if p.at_punct("("):
                p.skip_group()
    elif t.kind not in ("num", "lit", "ident"):
        p.i -= 1
        p.fail("expected a default value")


def _is_json_valid_check(p: _Parser, column: str) -> bool:
    """At '(' of CHECK: is it exactly (json_valid(`column`)), as MariaDB writes for its JSON type?"""
    k = 0
    while p.at_punct("(", k):
        k += 1
    fn, op, arg, cp = p.peek(k), p.peek(k + 1), p.peek(k + 2), p.peek(k + 3)
    return (k > 0 and fn is not None and fn.up == "JSON_VALID" and op is not None and op.text == "("
            and arg is not None and arg.kind in ("ident", "word") and arg.text.lower() == column.lower()
            and cp is not None and cp.text == ")"
            and all(p.at_punct(")", k + 4 + j) for j in range(k)))


def _skip_references(p: _Parser) -> None:
    # REFERENCES t (cols) [MATCH ...] [ON DELETE|UPDATE action]: its SET NULL is no column attribute.
    p.qualified("a referenced table")
    if p.at_punct("("):
        p.skip_group()
    if p.accept("MATCH"):
        p.next()
    while p.accept("ON"):
        p.next()
        if not (p.accept("RESTRICT") or p.accept("CASCADE") or p.accept("SET", "NULL")
                or p.accept("SET", "DEFAULT") or p.accept("NO", "ACTION")):
            p.fail("expected a referential action")


def _column_def(p: _Parser, name: str) -> _ColSpec:
    """column_definition after the column's name, up to the ',' or ')' that ends it."""
    spec = _ColSpec(name=name, base="")
    _data_type(p, spec)
    while not p.done() and not (p.at_punct(",") or p.at_punct(")")):
        t = p.peek()
        assert t is not None
        w = t.up if t.kind == "word" else ""
        if p.accept("NOT", "NULL"):
            spec.nullable = False
        elif p.accept("NULL"):
            spec.nullable = True
        elif p.accept("UNSIGNED"):
            spec.unsigned = True
        elif p.accept("ZEROFILL"):
            spec.zerofill = True
        elif p.accept("SIGNED"):
            pass
        elif p.accept("DEFAULT") or p.accept("ON", "UPDATE"):
            _skip_operand(p)
        elif p.accept("PRIMARY", "KEY") or p.accept("KEY"):
            spec.primary = True
        elif p.accept("UNIQUE"):
            _ = p.accept("KEY") or p.accept("INDEX")
        elif _accept_charset(p):
            spec.charset = _charset_clause(p)
        elif p.accept("COLLATE"):
            p.accept_punct("=")
            spec.collation = p.name("a collation name")
        elif w == "ASCII":
            p.i += 1
            spec.charset = "latin1"
        elif w == "UNICODE":
            p.i += 1
            spec.charset = "ucs2"
        elif w == "BYTE":
            p.i += 1
            spec.charset = "binary"
        elif w in ("BINARY", "AUTO_INCREMENT", "INVISIBLE", "VISIBLE", "VIRTUAL", "STORED", "PERSISTENT",
                   "ENFORCED"):
            p.i += 1  # BINARY here picks the charset's _bin collation: charset unchanged
        elif p.accept("NOT", "ENFORCED"):
            pass
        elif p.accept("COMMENT"):
            p.accept_punct("=")
            p.next()
        elif p.accept("GENERATED", "ALWAYS", "AS") or p.accept("AS"):
            if p.accept("ROW"):
                p.next()  # START / END of a system-versioned table's period columns
            else:
                p.skip_group()
        elif p.accept("SERIAL", "DEFAULT", "VALUE"):
            spec.nullable = False
        elif p.accept("REFERENCES"):
            _skip_references(p)
        elif p.accept("CONSTRAINT") or w == "CHECK":
            if not p.at("CHECK"):
                p.name("a constraint name")
            p.expect("CHECK")
            spec.json_check = spec.json_check or _is_json_valid_check(p, name)
            p.skip_group()
        elif w in ("COLUMN_FORMAT", "STORAGE", "SRID", "COMPRESSED", "REF_SYSTEM_ID", "ENGINE_ATTRIBUTE",
                   "SECONDARY_ENGINE_ATTRIBUTE"):
            p.i += 1
            if p.accept_punct("=") or w in ("COLUMN_FORMAT", "STORAGE", "SRID"):
                p.next()
        elif p.accept("WITH", "SYSTEM", "VERSIONING") or p.accept("WITHOUT", "SYSTEM", "VERSIONING"):
            pass
        elif p.accept("FIRST"):
            spec.position = ("FIRST", None)
        elif p.accept("AFTER"):
            spec.position = ("AFTER", p.name("a column name after AFTER"))
        else:
            p.fail(f"unexpected {t.text!r} in the definition of column `{name}`")
    return spec


def _key_parts(p: _Parser) -> list[str]:
    """(col [(len)] [ASC|DESC], ...) of an index; expression parts are skipped."""
    p.expect_punct("(")
    names: list[str] = []
    while True:
        if p.at_punct("("):
            p.skip_group()
        else:
            names.append(p.name("a key column"))
            if p.at_punct("("):
                p.skip_group()
        _ = p.accept("ASC") or p.accept("DESC")
        if not p.accept_punct(","):
            break
    p.expect_punct(")")
    return names


def _primary_key(p: _Parser) -> list[str]:
    """After PRIMARY KEY: [USING x] [name] (parts) [index options]."""
    if p.accept("USING"):
        p.next()
    if not p.at_punct("("):
        p.name("an index name")
    if p.accept("USING"):
        p.next()
    names = _key_parts(p)
    p.skip_item()
    return names


_INDEX_WORDS = frozenset({"INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK"})


@dataclass(slots=True)
class _CreateBody:
    columns: list[_ColSpec]
    primary_key: list[str] | None


def _create_definitions(p: _Parser) -> _CreateBody:
    """The (create_definition, ...) list, after its '('."""
    cols: list[_ColSpec] = []
    pk: list[str] | None = None
    while True:
        if p.accept("CONSTRAINT"):
            if not p.at_any(("PRIMARY", "UNIQUE", "FOREIGN", "CHECK")):
                p.name("a constraint name")
            if p.accept("PRIMARY", "KEY"):
                pk = _primary_key(p)
            else:
                p.skip_item()
        elif p.accept("PRIMARY", "KEY"):
            pk = _primary_key(p)
        elif p.at_any(_INDEX_WORDS) or p.at("PERIOD", "FOR"):
            p.skip_item()
        else:
            cols.append(_column_def(p, p.name("a column name")))
        if p.accept_punct(","):
            continue
        p.expect_punct(")")
        return _CreateBody(cols, pk)


@dataclass(slots=True)
class _TableOptions:
    charset: str | None = None
    collation: str | None = None
    default_charset: bool = False  # CHARACTER SET DEFAULT: the database's

    def resolved(self) -> str | None:
        return self.charset or (charset_of_collation(self.collation) if self.collation else None)


_SELECT_WORDS = frozenset({"SELECT", "AS", "IGNORE", "REPLACE", "WITH", "VALUES", "TABLE"})


def _create_table_options(p: _Parser) -> _TableOptions:
    """Table options and partitioning after the definitions, to the end: only charsets matter."""
    opts = _TableOptions()
    while not p.done():
        if p.at_punct("("):
            if p.group_starts_with("SELECT") or p.group_starts_with("WITH"):
                _unsupported_select(p)
            p.skip_group()
        elif _accept_charset(p):
            opts.charset = _charset_clause(p)
            opts.default_charset = opts.charset is None
        elif p.accept("COLLATE"):
            p.accept_punct("=")
            opts.collation = p.name("a collation name")
        elif p.at("WITH", "SYSTEM", "VERSIONING"):
            raise _Drift("the table is WITH SYSTEM VERSIONING: its hidden row_start/row_end columns are "
                         "in the binlog rows but not in its DDL, which this history does not model")
        elif p.at_any(_SELECT_WORDS):
            _unsupported_select(p)
        else:
            p.i += 1
    return opts


def _unsupported_select(p: _Parser) -> NoReturn:
    raise _Drift("CREATE TABLE ... SELECT takes its columns from a query, which the DDL text alone "
                 "cannot tell (row-based binlogs log such tables as a plain CREATE TABLE)")


def _build_table(db: str, table: str, body: _CreateBody, charset: str | None) -> TableSchema:
    cols = [s.resolve(charset) for s in body.columns]
    pk = list(body.primary_key or [])
    for s in body.columns:
        if s.primary:
            pk = [s.name]
    return _finish(db, table, cols, pk, charset)


def _finish(db: str, table: str, cols: list[ColumnDef], pk: list[str], charset: str | None) -> TableSchema:
    """The schema with its primary key spelled as its columns are, and those columns NOT NULL."""
    by_name = {c.name.lower(): i for i, c in enumerate(cols)}
    if len(by_name) != len(cols):
        dup = next(c.name for i, c in enumerate(cols) if by_name[c.name.lower()] != i)
        raise _Drift(f"column `{dup}` would exist twice")
    key: list[str] = []
    for name in pk:
        i = by_name.get(name.lower())
        if i is None:
            raise _Drift(f"primary key column `{name}` is not a column of the table")
        key.append(cols[i].name)
        if cols[i].nullable:
            cols[i] = replace(cols[i], nullable=False)
    return TableSchema(db=db, table=table, columns=tuple(cols), primary_key=tuple(key), charset=charset)


# ---------------------------------------------------------------------------------------------------
# Statements


def _excerpt(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _where(sql: str, pos: int | None) -> str:
    if pos is None:
        return ""
    if pos >= len(sql.rstrip()):
        return " at the end of the statement"
    line = sql.count("\n", 0, pos) + 1
    col = pos - (sql.rfind("\n", 0, pos) + 1) + 1
    near = " ".join(sql[pos:pos + 40].split())
    return f" at line {line}, column {col}, near {near!r}"


_REMEDY = ("Capture of this table stops here; re-snapshot the table (its schema is then read again with "
           "SHOW CREATE TABLE) to resume it.")


def _message(db: str, table: str, what: str, sql: str) -> str:
    return f"Schema history of `{db}`.`{table}`: {what}. Statement: {_excerpt(sql)} — {_REMEDY}"


def parse_create_table(sql: str, db: str, default_charset: str | None) -> TableSchema:
    """The schema a CREATE TABLE statement (or `SHOW CREATE TABLE` output) defines.

    `db` is the table's database unless the statement qualifies the name; `default_charset` is that
    database's default charset, used when the table names none. Raises DdlError for anything else
    than a CREATE TABLE with its column definitions (LIKE and SELECT forms need `apply_ddl`)."""
    table = "?"
    try:
        found = _tables_by_regex(sql, db)
        if found:
            db, table = found[0]
        p = _Parser(sql)
        p.expect("CREATE")
        p.accept("OR", "REPLACE")
        p.accept("TEMPORARY")
        p.expect("TABLE")
        p.accept("IF", "NOT", "EXISTS")
        qdb, table = p.qualified("a table name")
        db = qdb or db
        if p.at("LIKE") or (p.at_punct("(") and p.word_at(1, "LIKE")):
            raise _Drift("CREATE TABLE ... LIKE copies another table's schema; apply it with apply_ddl")
        if not p.accept_punct("("):
            _unsupported_select(p)
        body = _create_definitions(p)
        opts = _create_table_options(p)
        return _build_table(db, table, body, opts.resolved() or default_charset)
    except _Syntax as e:
        raise DdlError(_message(db, table, f"cannot parse CREATE TABLE: {e.message}{_where(sql, e.pos)}",
                                sql)) from None
    except _Drift as e:
        raise DdlError(_message(db, table, f"cannot build the schema: {e}", sql)) from None


class _Work:
    """The schemas as the statement goes: an overlay on the caller's mapping, plus what to report."""

    def __init__(self, sql: str, current_db: str | None, schemas: Mapping[Key, TableSchema],
                 db_charsets: Mapping[str, str], server_charset: str | None) -> None:
        self.sql = sql
        self.current_db = current_db
        self.base = schemas
        self.base_charsets = db_charsets
        self.server_charset = server_charset
        self.over: dict[Key, TableSchema | None] = {}
        self.dropped: list[Key] = []
        self.renamed: list[tuple[Key, Key]] = []
        self.truncated: list[Key] = []
        self.charsets: dict[str, str | None] = {}
        self.dropped_dbs: list[str] = []
        self.failed: list[DdlFailure] = []
        self.touched: list[Key] = []  # tables named so far: the ones a syntax error stops

    def key(self, qualified: tuple[str | None, str]) -> Key:
        key = (qualified[0] or self.current_db or "", qualified[1])
        self.touched.append(key)
        return key

    def get(self, key: Key) -> TableSchema | None:
        return self.over[key] if key in self.over else self.base.get(key)

    def db_charset(self, db: str) -> str | None:
        if db in self.charsets:
            return self.charsets[db]
        return self.base_charsets.get(db, self.server_charset)

    def tables_of(self, db: str) -> list[Key]:
        keys = {k for k in self.base if k[0] == db} | {k for k in self.over if k[0] == db}
        return sorted(k for k in keys if self.get(k) is not None)

    def fail(self, key: Key, what: str) -> None:
        self.failed.append(DdlFailure(key[0], key[1], _message(key[0], key[1], what, self.sql)))

    def result(self) -> DdlResult:
        failed = {(f.db, f.table) for f in self.failed}
        changed = {k: v for k, v in self.over.items()
                   if v is not None and k not in failed and self.base.get(k) != v}
        gone = [*self.dropped, *(old for old, _ in self.renamed if old in self.base)]
        dropped = tuple(k for k in dict.fromkeys(gone) if self.over.get(k) is None and k not in failed)
        return DdlResult(changed=changed, dropped=dropped, renamed=tuple(self.renamed),
                         truncated=tuple(self.truncated),
                         db_charsets={db: cs for db, cs in self.charsets.items() if cs is not None},
                         dropped_databases=tuple(self.dropped_dbs), failed=tuple(self.failed))


def apply_ddl(sql: str, current_db: str | None, schemas: Mapping[Key, TableSchema],
              db_charsets: Mapping[str, str], *, server_charset: str | None = None) -> DdlResult:
    """Apply one statement from a binlog QueryEvent to the schema history.

    `current_db`: the event's database (the session's USE), for unqualified names. `schemas`: every
    table's schema before the statement, by (db, table); `db_charsets`: databases' default charsets.
    `server_charset`: character_set_server, the default of a CREATE DATABASE that names none (the
    event's collation_server status variable tells it). Never raises for a statement: what cannot be
    applied is in `failed`. Statements that are no schema change (BEGIN, COMMIT, GRANT, INSERT, CREATE
    VIEW, CREATE INDEX, ...) return an empty result, most without being tokenized."""
    if not is_schema_statement(sql):
        return _NOTHING
    work = _Work(sql, current_db, schemas, db_charsets, server_charset)
    try:
        p = _Parser(sql)
        _statement(p, work)
    except _Syntax as e:
        return _syntax_failure(work, f"cannot parse the statement: {e.message}{_where(sql, e.pos)}")
    except _Drift as e:
        return _syntax_failure(work, str(e))
    return work.result()


def _syntax_failure(work: _Work, what: str) -> DdlResult:
    """The whole statement is void: every table it names stops (read by regex when tokens failed)."""
    keys = list(dict.fromkeys(work.touched)) or _tables_by_regex(work.sql, work.current_db)
    dbs = _databases_by_regex(work.sql, work.current_db) if not keys else []
    for db in dbs:
        keys.extend(k for k in work.base if k[0] == db)
    failed = [DdlFailure(db, table, _message(db, table, what, work.sql)) for db, table in dict.fromkeys(keys)]
    return DdlResult(failed=tuple(failed))


_NAME_RE = r"(?:`(?:[^`]|``)+`|\"(?:[^\"]|\"\")+\"|[\w$]+)"
_REF_RE = rf"({_NAME_RE})(?:\s*\.\s*({_NAME_RE}))?"
_TABLE_HEAD_RE = re.compile(
    r"^\s*(?:ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE(?:\s+IF\s+EXISTS)?"
    r"|CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE(?:\s+IF\s+NOT\s+EXISTS)?"
    r"|DROP\s+(?:TEMPORARY\s+)?TABLES?(?:\s+IF\s+EXISTS)?|RENAME\s+TABLES?|TRUNCATE(?:\s+TABLE)?)\s+", re.I)
_DB_HEAD_RE = re.compile(rf"^\s*(?:CREATE|ALTER|DROP)\s+(?:DATABASE|SCHEMA)(?:\s+IF\s+(?:NOT\s+)?EXISTS)?\s+{_REF_RE}",
                         re.I)
_COMMENT_RE = re.compile(r"/\*.*?\*/|#[^\n]*|--\s[^\n]*", re.S)


def _unquote(name: str) -> str:
    if name[:1] in "`\"" and name[-1:] == name[:1]:
        q = name[0]
        return name[1:-1].replace(q + q, q)
    return name


def _tables_by_regex(sql: str, current_db: str | None) -> list[Key]:
    """The tables a statement names, read from its raw text when it could not even be tokenized."""
    text = _COMMENT_RE.sub(" ", sql)
    m = _TABLE_HEAD_RE.match(text)
    if not m:
        return []
    keys: list[Key] = []
    pos = m.end()
    ref = re.compile(rf"\s*{_REF_RE}(?:\s+TO\s+{_REF_RE})?\s*(,)?", re.I)
    while (r := ref.match(text, pos)) is not None:
        for first, second in ((r.group(1), r.group(2)), (r.group(3), r.group(4))):
            if first:
                db, table = (first, second) if second else (current_db or "", first)
                keys.append((_unquote(db), _unquote(table)))
        pos = r.end()
        if not r.group(5):
            break
    return keys


def _databases_by_regex(sql: str, current_db: str | None) -> list[str]:
    m = _DB_HEAD_RE.match(_COMMENT_RE.sub(" ", sql))
    return [_unquote(m.group(1))] if m else []


def _statement(p: _Parser, work: _Work) -> None:
    if p.accept("CREATE"):
        replace_ = p.accept("OR", "REPLACE")
        if p.accept("DATABASE") or p.accept("SCHEMA"):
            _create_database(p, work, replace_)
            return
        temporary = p.accept("TEMPORARY")
        if p.accept("TABLE"):
            if not temporary:  # temporary tables are never captured, nor logged in ROW format
                _create_table(p, work, replace_)
        elif p.at("UNIQUE", "INDEX") or p.at("FULLTEXT", "INDEX") or p.at("SPATIAL", "INDEX") or p.at("INDEX"):
            return
        return
    if p.accept("ALTER"):
        p.accept("ONLINE")
        p.accept("IGNORE")
        if p.accept("TABLE"):
            _alter_table(p, work)
        elif p.accept("DATABASE") or p.accept("SCHEMA"):
            _alter_database(p, work)
        return
    if p.accept("DROP"):
        temporary = p.accept("TEMPORARY")
        if p.accept("TABLE") or p.accept("TABLES"):
            if not temporary:
                _drop_tables(p, work)
        elif p.accept("DATABASE") or p.accept("SCHEMA"):
            _drop_database(p, work)
        elif p.accept("INDEX"):
            _drop_index(p, work)
        return
    if p.accept("RENAME"):
        if p.accept("TABLE") or p.accept("TABLES"):
            _rename_tables(p, work)
        return
    if p.accept("TRUNCATE"):
        p.accept("TABLE")
        work.truncated.append(work.key(p.qualified("a table name")))


def _create_table(p: _Parser, work: _Work, replace_: bool) -> None:
    if_not_exists = p.accept("IF", "NOT", "EXISTS")
    key = work.key(p.qualified("a table name"))
    exists = work.get(key) is not None
    like = p.accept("LIKE")
    if not like and p.at_punct("(") and p.word_at(1, "LIKE"):
        p.i += 2
        like = True
    if like:
        src_key = work.key(p.qualified("a table name"))
        if exists and if_not_exists and not replace_:
            return
        src = work.get(src_key)
        if src is None:
            work.fail(key, f"CREATE TABLE ... LIKE `{src_key[0]}`.`{src_key[1]}`, a table not in the schema "
                           "history, so the new table's columns are unknown")
            return
        work.over[key] = replace(src, db=key[0], table=key[1])
        return
    if not p.accept_punct("("):
        _unsupported_select(p)
    body = _create_definitions(p)
    opts = _create_table_options(p)
    if exists and if_not_exists and not replace_:
        return  # the server logs it even when the table exists, and changes nothing
    charset = opts.resolved() or work.db_charset(key[0])
    work.over[key] = _build_table(key[0], key[1], body, charset)


def _drop_tables(p: _Parser, work: _Work) -> None:
    p.accept("IF", "EXISTS")
    while True:
        key = work.key(p.qualified("a table name"))
        # MariaDB logs DROP TABLE even when some named tables do not exist: drop the ones that do.
        work.dropped.append(key)
        work.over[key] = None
        if not p.accept_punct(","):
            break


def _drop_index(p: _Parser, work: _Work) -> None:
    """DROP INDEX name ON table: only DROP INDEX `PRIMARY` changes what we keep."""
    if_exists = p.accept("IF", "EXISTS")
    name = p.name("an index name")
    p.expect("ON")
    key = work.key(p.qualified("a table name"))
    if name.upper() != "PRIMARY":
        return
    old = work.get(key)
    if old is None:
        if not if_exists:
            work.fail(key, "DROP INDEX `PRIMARY` on a table not in the schema history")
        return
    work.over[key] = replace(old, primary_key=())


def _rename_tables(p: _Parser, work: _Work) -> None:
    p.accept("IF", "EXISTS")
    while True:
        old = work.key(p.qualified("a table name"))
        if p.accept("WAIT"):
            p.next()
        p.accept("NOWAIT")
        p.expect("TO")
        new = work.key(p.qualified("a table name"))
        _rename(work, old, new)
        if not p.accept_punct(","):
            break


def _rename(work: _Work, old: Key, new: Key) -> None:
    schema = work.get(old)
    work.renamed.append((old, new))
    work.over[old] = None
    if schema is None:
        work.over[new] = None
        work.fail(new, f"renamed from `{old[0]}`.`{old[1]}`, a table not in the schema history, so its "
                       "columns are unknown")
        return
    work.over[new] = replace(schema, db=new[0], table=new[1])


def _create_database(p: _Parser, work: _Work, replace_: bool) -> None:
    if_not_exists = p.accept("IF", "NOT", "EXISTS")
    db = p.name("a database name")
    opts = _database_options(p)
    known = db in work.charsets or db in work.base_charsets or bool(work.tables_of(db))
    if known and if_not_exists and not replace_:
        return
    if replace_:
        _forget_database(work, db)
    work.charsets[db] = opts.resolved() or work.server_charset


def _alter_database(p: _Parser, work: _Work) -> None:
    db = work.current_db or ""
    if not (_at_charset(p) or p.at("DEFAULT") or p.at("COLLATE")):
        db = p.name("a database name")
    opts = _database_options(p)
    cs = opts.resolved()
    if cs is not None:
        work.charsets[db] = cs


def _database_options(p: _Parser) -> _TableOptions:
    opts = _TableOptions()
    while not p.done():
        if _accept_charset(p):
            opts.charset = _charset_clause(p)
        elif p.accept("COLLATE"):
            p.accept_punct("=")
            opts.collation = p.name("a collation name")
        else:
            p.i += 1
    return opts


def _drop_database(p: _Parser, work: _Work) -> None:
    p.accept("IF", "EXISTS")
    db = p.name("a database name")
    _forget_database(work, db)
    work.dropped_dbs.append(db)


def _forget_database(work: _Work, db: str) -> None:
    for key in work.tables_of(db):
        work.dropped.append(key)
        work.over[key] = None
    work.charsets.pop(db, None)


# ---------------------------------------------------------------------------------------------------
# ALTER TABLE


@dataclass(slots=True)
class _Alter:
    """An ALTER TABLE's specifications, gathered before any is applied (the server resolves them
    together, against the table as it was)."""

    drops: list[tuple[str, bool]] = field(default_factory=list)  # (column, IF EXISTS)
    changes: list[tuple[str, _ColSpec, bool]] = field(default_factory=list)  # (old name, new def, IF EXISTS)
    renames: list[tuple[str, str]] = field(default_factory=list)
    adds: list[tuple[_ColSpec, bool]] = field(default_factory=list)  # (def, IF NOT EXISTS)
    positioned: list[_ColSpec] = field(default_factory=list)  # ADD/CHANGE/MODIFY with FIRST/AFTER, in order
    drop_pk: bool = False
    add_pk: list[str] | None = None
    new_name: tuple[str | None, str] | None = None
    options: _TableOptions = field(default_factory=_TableOptions)
    convert: tuple[str | None, str | None] | None = None  # (charset or None for DEFAULT, collation)


_ALTER_VERBS = frozenset({"ADD", "DROP", "CHANGE", "MODIFY", "RENAME", "ALTER", "CONVERT", "CHARSET",
                          "CHARACTER", "COLLATE", "DEFAULT"})
_ADD_SKIPPED = frozenset({"INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "PARTITION"})


def _alter_table(p: _Parser, work: _Work) -> None:
    p.accept("IF", "EXISTS")
    key = work.key(p.qualified("a table name"))
    if p.accept("WAIT"):
        p.next()
    p.accept("NOWAIT")
    spec = _Alter()
    while not p.done():
        _alter_spec(p, spec)
        p.accept_punct(",")
    old = work.get(key)
    new_key = work.key(spec.new_name) if spec.new_name is not None else key
    if old is None:
        work.fail(key, "ALTER TABLE of a table not in the schema history (neither in the snapshot nor created "
                       "by DDL since), so its columns are unknown")
        if new_key != key:
            work.renamed.append((key, new_key))
            work.fail(new_key, f"renamed from `{key[0]}`.`{key[1]}`, a table not in the schema history")
        return
    try:
        schema = _apply_alter(old, spec, work.db_charset(key[0]))
    except _Drift as e:
        work.fail(key, f"the ALTER TABLE does not fit the known schema ({e})")
        if new_key != key:
            work.fail(new_key, f"renamed from `{key[0]}`.`{key[1]}` by an ALTER TABLE that does not fit the "
                               f"known schema ({e})")
        return
    if new_key != key:
        work.renamed.append((key, new_key))
        work.over[key] = None
    work.over[new_key] = replace(schema, db=new_key[0], table=new_key[1])


def _alter_spec(p: _Parser, a: _Alter) -> None:
    """One alter specification, up to (not including) the ',' that ends it."""
    if p.accept("ADD"):
        if p.accept("COLUMN"):
            _add_columns(p, a)
        elif p.accept("CONSTRAINT"):
            p.accept("IF", "NOT", "EXISTS")
            if not p.at_any(("PRIMARY", "UNIQUE", "FOREIGN", "CHECK")):
                p.name("a constraint name")
            if p.accept("PRIMARY", "KEY"):
                a.add_pk = _primary_key(p)
            else:
                p.skip_item()
        elif p.accept("PRIMARY", "KEY"):
            a.add_pk = _primary_key(p)
        elif p.at("SYSTEM", "VERSIONING"):
            raise _Drift("ADD SYSTEM VERSIONING adds hidden row_start/row_end columns, which this history "
                         "does not model")
        elif p.at_any(_ADD_SKIPPED) or p.at("PERIOD", "FOR"):
            p.skip_item()
        else:
            _add_columns(p, a)
    elif p.accept("DROP"):
        if p.accept("PRIMARY", "KEY"):
            a.drop_pk = True
        elif p.accept("INDEX") or p.accept("KEY") or p.accept("CONSTRAINT"):
            p.accept("IF", "EXISTS")
            if p.name("an index name").upper() == "PRIMARY":
                a.drop_pk = True
        elif p.at("SYSTEM", "VERSIONING"):
            raise _Drift("DROP SYSTEM VERSIONING removes hidden columns, which this history does not model")
        elif p.accept("FOREIGN", "KEY") or p.accept("CHECK") or p.accept("PARTITION") or p.accept("PERIOD", "FOR"):
            p.skip_item()
        else:
            p.accept("COLUMN")
            if_exists = p.accept("IF", "EXISTS")
            a.drops.append((p.name("a column name"), if_exists))
            _ = p.accept("RESTRICT") or p.accept("CASCADE")
    elif p.accept("CHANGE"):
        p.accept("COLUMN")
        if_exists = p.accept("IF", "EXISTS")
        old = p.name("a column name")
        col = _column_def(p, p.name("a column name"))
        a.changes.append((old, col, if_exists))
        if col.position:
            a.positioned.append(col)
    elif p.accept("MODIFY"):
        p.accept("COLUMN")
        if_exists = p.accept("IF", "EXISTS")
        name = p.name("a column name")
        col = _column_def(p, name)
        a.changes.append((name, col, if_exists))
        if col.position:
            a.positioned.append(col)
    elif p.accept("RENAME"):
        if p.accept("COLUMN"):
            old = p.name("a column name")
            p.expect("TO")
            a.renames.append((old, p.name("a column name")))
        elif p.accept("INDEX") or p.accept("KEY"):
            p.skip_item()
        else:
            _ = p.accept("TO") or p.accept("AS") or p.accept_punct("=")
            a.new_name = p.qualified("a table name")
    elif p.accept("ALTER"):
        # ALTER [COLUMN] c SET DEFAULT .../DROP DEFAULT/SET VISIBLE, ALTER INDEX, ALTER CHECK: no column
        # changes; read to the ',' so its DROP DEFAULT is not taken for a DROP COLUMN.
        p.skip_item()
    elif p.accept("CONVERT", "TO"):
        if not _accept_charset(p):
            p.fail("expected CHARACTER SET after CONVERT TO")
        cs = _charset_clause(p)
        collation = None
        if p.accept("COLLATE"):
            p.accept_punct("=")
            collation = p.name("a collation name")
        a.convert = (cs, collation)
    elif p.accept("DEFAULT") and not (_at_charset(p) or p.at("COLLATE")):
        _skip_option(p)  # (DEFAULT CHARSET/COLLATE falls through, DEFAULT consumed, to the branches below)
    elif _accept_charset(p):
        a.options.charset = _charset_clause(p)
        a.options.default_charset = a.options.charset is None
    elif p.accept("COLLATE"):
        p.accept_punct("=")
        a.options.collation = p.name("a collation name")
    else:
        # ALTER COLUMN ... SET/DROP DEFAULT, ALTER INDEX, table options, ALGORITHM, LOCK, FORCE,
        # ORDER BY, partitioning, ENABLE KEYS ...: nothing the history keeps.
        p.i += 1
        _skip_option(p)


def _skip_option(p: _Parser) -> None:
    """Skip to the ',' ending a specification, or to the next one that matters (table options need no
    commas between them: ENGINE=InnoDB DEFAULT CHARSET=latin1)."""
    while not p.done() and not p.at_punct(","):
        if p.at_punct("("):
            p.skip_group()
        elif p.at_any(_ALTER_VERBS) and not p.at_punct("=", -1):
            return
        else:
            p.i += 1


def _add_columns(p: _Parser, a: _Alter) -> None:
    if_not_exists = p.accept("IF", "NOT", "EXISTS")
    if p.accept_punct("("):
        while True:
            a.adds.append((_column_def(p, p.name("a column name")), if_not_exists))
            if not p.accept_punct(","):
                break
        p.expect_punct(")")
        return
    col = _column_def(p, p.name("a column name"))
    a.adds.append((col, if_not_exists))
    if col.position:
        a.positioned.append(col)


def _convert(col: ColumnDef, charset: str | None) -> ColumnDef:
    """A character column after CONVERT TO CHARACTER SET: TEXT types grow to keep their length in
    characters (never shrink), CHARACTER SET binary turns them into binary strings."""
    if col.type not in _CHARACTER_TYPES:
        return col
    if charset == "binary":
        if col.type in _TO_BINARY:
            return replace(col, type=_TO_BINARY[col.type], charset=None)
        return replace(col, charset=charset)
    if col.type in _TEXTS and col.charset and charset:
        chars = _CAPACITY[_TEXTS.index(col.type)] // _MBMAXLEN.get(col.charset, 1)
        grown = _sized(_TEXTS, chars * _MBMAXLEN.get(charset, 1))
        return replace(col, type=max(col.type, grown, key=_TEXTS.index), charset=charset)
    return replace(col, charset=charset)


def _apply_alter(old: TableSchema, a: _Alter, db_charset: str | None) -> TableSchema:
    charset = old.charset
    if a.convert is not None:
        charset = a.convert[0] or (charset_of_collation(a.convert[1]) if a.convert[1] else None) or db_charset
    if a.options.charset or a.options.collation:
        charset = a.options.resolved()
    elif a.options.default_charset:
        charset = db_charset

    index = {c.name.lower(): i for i, c in enumerate(old.columns)}
    cols: list[ColumnDef | None] = list(old.columns)
    new_names = [c.name for c in old.columns]  # by position in the old table
    seen: set[int] = set()
    positioned = list(a.positioned)

    def find(name: str, if_exists: bool, verb: str) -> int | None:
        i = index.get(name.lower())
        if i is None:
            if if_exists:
                return None
            raise _Drift(f"{verb} column `{name}`, which the table does not have "
                         f"(columns: {', '.join(c.name for c in old.columns)})")
        if i in seen:
            raise _Drift(f"column `{name}` is changed twice in one statement")
        seen.add(i)
        return i

    for name, if_exists in a.drops:
        i = find(name, if_exists, "DROP")
        if i is not None:
            cols[i] = None
    for name, spec, if_exists in a.changes:
        i = find(name, if_exists, "CHANGE/MODIFY")
        if i is not None:
            cols[i] = spec.resolve(charset)
            new_names[i] = spec.name
        else:
            positioned = [s for s in positioned if s is not spec]
    for name, new in a.renames:
        i = find(name, False, "RENAME")
        assert i is not None
        col = cols[i]
        assert col is not None
        cols[i] = replace(col, name=new)
        new_names[i] = new

    result = [c for c in cols if c is not None]
    for spec, if_not_exists in a.adds:
        if if_not_exists and any(c.name.lower() == spec.name.lower() for c in result):
            positioned = [s for s in positioned if s is not spec]
            continue
        result.append(spec.resolve(charset))

    for spec in positioned:
        at = next(i for i, c in enumerate(result) if c.name == spec.name)
        col = result.pop(at)
        assert spec.position is not None
        kind, after = spec.position
        if kind == "FIRST":
            result.insert(0, col)
        else:
            assert after is not None
            j = next((i for i, c in enumerate(result) if c.name.lower() == after.lower()), None)
            if j is None:
                raise _Drift(f"AFTER `{after}`: no such column")
            result.insert(j + 1, col)

    if a.convert is not None:
        result = [_convert(c, charset) for c in result]

    pk: list[str] = []
    if not a.drop_pk:
        for name in old.primary_key:
            i = index.get(name.lower())
            if i is not None and cols[i] is not None:
                pk.append(new_names[i])
    for spec in [s for _, s, _ in a.changes] + [s for s, _ in a.adds]:
        if spec.primary:
            pk = [spec.name]
    if a.add_pk is not None:
        pk = a.add_pk
    return _finish(old.db, old.table, result, pk, charset)
