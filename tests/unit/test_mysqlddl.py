"""MySQL/MariaDB DDL text → TableSchema / DdlResult: column types in normal form, ALTER semantics, the
statements that change nothing, and the exact messages for what cannot be applied."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cdc.readers import mysqlddl
from cdc.readers.mysqlddl import (
    DdlError,
    DdlFailure,
    DdlResult,
    apply_ddl,
    charset_of_collation,
    is_schema_statement,
    parse_create_table,
)
from cdc.readers.mysqlschema import ColumnDef, TableSchema

Key = tuple[str, str]


def col(name: str, type_: str, length: int | None = None, scale: int | None = None, *, unsigned: bool = False,
        nullable: bool = True, charset: str | None = None, values: tuple[str, ...] = ()) -> ColumnDef:
    return ColumnDef(name=name, type=type_, length=length, scale=scale, unsigned=unsigned, nullable=nullable,
                     charset=charset, values=values)


def one_column(decl: str, table_charset: str | None = "utf8mb4") -> ColumnDef:
    schema = parse_create_table(f"CREATE TABLE t (c {decl})", "db", table_charset)
    assert len(schema.columns) == 1
    return schema.columns[0]


def table(sql: str, db: str = "db", charset: str | None = "utf8mb4") -> TableSchema:
    return parse_create_table(sql, db, charset)


class History:
    """A schema history driven statement by statement, as the binlog reader drives it."""

    def __init__(self, schemas: Mapping[Key, TableSchema] | None = None,
                 charsets: Mapping[str, str] | None = None) -> None:
        self.schemas: dict[Key, TableSchema] = dict(schemas or {})
        self.charsets: dict[str, str] = dict(charsets or {"db": "utf8mb4"})

    def run(self, sql: str, db: str | None = "db", **kw: str) -> DdlResult:
        result = apply_ddl(sql, db, self.schemas, self.charsets, **kw)
        self.schemas, self.charsets = result.applied_to(self.schemas, self.charsets)
        return result

    def create(self, sql: str, db: str = "db") -> TableSchema:
        result = self.run(sql, db)
        assert not result.failed, result.failed
        (schema,) = result.changed.values()
        return schema

    def of(self, key: str) -> TableSchema:
        """The schema of "table" or "db.table" (a call, so that mypy does not narrow it across asserts)."""
        db, _, name = key.rpartition(".")
        return self.schemas[(db or "db", name)]


# --------------------------------------------------------------------------------------- column types

@pytest.mark.parametrize(("decl", "expected"), [
    # integers: MariaDB's default display widths when (M) is not given
    ("tinyint", col("c", "tinyint", 4)),
    ("tinyint unsigned", col("c", "tinyint", 3, unsigned=True)),
    ("TINYINT(1)", col("c", "tinyint", 1)),
    ("bool", col("c", "tinyint", 1)),
    ("BOOLEAN NOT NULL", col("c", "tinyint", 1, nullable=False)),
    ("smallint", col("c", "smallint", 6)),
    ("smallint(5) unsigned zerofill", col("c", "smallint", 5, unsigned=True)),
    ("smallint zerofill", col("c", "smallint", 5, unsigned=True)),
    ("mediumint", col("c", "mediumint", 9)),
    ("middleint unsigned", col("c", "mediumint", 8, unsigned=True)),
    ("int", col("c", "int", 11)),
    ("int unsigned", col("c", "int", 10, unsigned=True)),
    ("INTEGER(5) SIGNED", col("c", "int", 5)),
    ("int4", col("c", "int", 11)),
    ("int1", col("c", "tinyint", 4)),
    ("int2", col("c", "smallint", 6)),
    ("int3", col("c", "mediumint", 9)),
    ("bigint", col("c", "bigint", 20)),
    ("bigint(20) unsigned", col("c", "bigint", 20, unsigned=True)),
    ("int8 unsigned", col("c", "bigint", 20, unsigned=True)),
    ("serial", col("c", "bigint", 20, unsigned=True, nullable=False)),
    ("int NOT NULL SERIAL DEFAULT VALUE", col("c", "int", 11, nullable=False)),
    # fixed and floating point
    ("decimal", col("c", "decimal", 10, 0)),
    ("decimal(12,3)", col("c", "decimal", 12, 3)),
    ("numeric(5)", col("c", "decimal", 5, 0)),
    ("dec(3,1) unsigned", col("c", "decimal", 3, 1, unsigned=True)),
    ("fixed(4,2)", col("c", "decimal", 4, 2)),
    ("float", col("c", "float")),
    ("float(24)", col("c", "float")),
    ("float(25)", col("c", "double")),
    ("float(7,3)", col("c", "float", 7, 3)),
    ("float4", col("c", "float")),
    ("double", col("c", "double")),
    ("double precision", col("c", "double")),
    ("real", col("c", "double")),
    ("float8", col("c", "double")),
    ("double(10,2) unsigned zerofill", col("c", "double", 10, 2, unsigned=True)),
    ("bit", col("c", "bit", 1)),
    ("bit(64)", col("c", "bit", 64)),
    # strings
    ("char", col("c", "char", 1, charset="utf8mb4")),
    ("character(3)", col("c", "char", 3, charset="utf8mb4")),
    ("varchar(20)", col("c", "varchar", 20, charset="utf8mb4")),
    ("character varying(20)", col("c", "varchar", 20, charset="utf8mb4")),
    ("char(3) character set latin1", col("c", "char", 3, charset="latin1")),
    ("char(3) CHARSET 'utf8'", col("c", "char", 3, charset="utf8mb3")),
    ("char(3) char set ucs2", col("c", "char", 3, charset="ucs2")),
    ("varchar(20) collate latin1_swedish_ci", col("c", "varchar", 20, charset="latin1")),
    ("varchar(20) COLLATE utf8_general_ci", col("c", "varchar", 20, charset="utf8mb3")),
    ("varchar(20) COLLATE utf16le_general_ci", col("c", "varchar", 20, charset="utf16le")),
    ("varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci", col("c", "varchar", 20, charset="utf8mb4")),
    ("varchar(20) COLLATE uca1400_ai_ci", col("c", "varchar", 20, charset="utf8mb4")),
    ("varchar(5) ascii", col("c", "varchar", 5, charset="latin1")),
    ("varchar(5) unicode", col("c", "varchar", 5, charset="ucs2")),
    ("char(2) ascii binary", col("c", "char", 2, charset="latin1")),
    ("text binary", col("c", "text", charset="utf8mb4")),
    ("national char(3)", col("c", "char", 3, charset="utf8mb3")),
    ("nchar(3)", col("c", "char", 3, charset="utf8mb3")),
    ("nchar varchar(4)", col("c", "varchar", 4, charset="utf8mb3")),
    ("national varchar(4)", col("c", "varchar", 4, charset="utf8mb3")),
    ("nvarchar(4)", col("c", "varchar", 4, charset="utf8mb3")),
    ("national character varying(4)", col("c", "varchar", 4, charset="utf8mb3")),
    ("binary", col("c", "binary", 1)),
    ("binary(16)", col("c", "binary", 16)),
    ("char byte", col("c", "binary", 1)),
    ("varbinary(10)", col("c", "varbinary", 10)),
    ("char(3) character set binary", col("c", "binary", 3)),
    ("varchar(10) charset binary", col("c", "varbinary", 10)),
    ("text charset binary", col("c", "blob")),
    ("tinytext", col("c", "tinytext", charset="utf8mb4")),
    ("text", col("c", "text", charset="utf8mb4")),
    ("mediumtext", col("c", "mediumtext", charset="utf8mb4")),
    ("longtext charset utf8", col("c", "longtext", charset="utf8mb3")),
    ("long", col("c", "mediumtext", charset="utf8mb4")),
    ("long varchar", col("c", "mediumtext", charset="utf8mb4")),
    ("long varbinary", col("c", "mediumblob")),
    ("text(63)", col("c", "tinytext", charset="utf8mb4")),
    ("text(64)", col("c", "text", charset="utf8mb4")),
    ("text(100) charset latin1", col("c", "tinytext", charset="latin1")),
    ("text(70000) charset latin1", col("c", "mediumtext", charset="latin1")),
    ("text(20000000) charset latin1", col("c", "longtext", charset="latin1")),
    ("tinyblob", col("c", "tinyblob")),
    ("blob", col("c", "blob")),
    ("blob(255)", col("c", "tinyblob")),
    ("blob(256)", col("c", "blob")),
    ("mediumblob", col("c", "mediumblob")),
    ("longblob", col("c", "longblob")),
    # temporal: fractional-seconds precision 0 is no precision, as SHOW CREATE TABLE prints it
    ("date", col("c", "date")),
    ("datetime", col("c", "datetime")),
    ("datetime(0)", col("c", "datetime")),
    ("datetime(6)", col("c", "datetime", 6)),
    ("timestamp(3) NULL", col("c", "timestamp", 3)),
    ("timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()",
     col("c", "timestamp", nullable=False)),
    ("time(2)", col("c", "time", 2)),
    ("year", col("c", "year", 4)),
    ("year(2)", col("c", "year", 2)),
    # enum and set members, with the quoting SHOW CREATE TABLE uses
    ("enum('a','b''c','d,e') NOT NULL", col("c", "enum", charset="utf8mb4", values=("a", "b'c", "d,e"),
                                            nullable=False)),
    ("enum('a\\\\b','new\\nline','dq\"x') charset latin1",
     col("c", "enum", charset="latin1", values=("a\\b", "new\nline", 'dq"x'))),
    ("set('x','y') DEFAULT 'x,y'", col("c", "set", charset="utf8mb4", values=("x", "y"))),
    ("enum('a  ', ' b ', _utf8mb4'c')", col("c", "enum", charset="utf8mb4", values=("a", " b", "c"))),
    # JSON: the type MySQL prints, or MariaDB's longtext with its json_valid check
    ("json", col("c", "json", charset="utf8mb4")),
    ("json", col("c", "json", charset="utf8mb4")),
    ("longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`c`))",
     col("c", "json", charset="utf8mb4")),
    ("longtext CHECK (JSON_VALID(C))", col("c", "json", charset="utf8mb4")),
    ("longtext CHECK (json_valid(other))", col("c", "longtext", charset="utf8mb4")),
    ("text CHECK (json_valid(c))", col("c", "text", charset="utf8mb4")),
    # spatial and MariaDB's own types
    ("geometry", col("c", "geometry")),
    ("point NOT NULL SRID 4326", col("c", "point", nullable=False)),
    ("multipolygon REF_SYSTEM_ID=4326", col("c", "multipolygon")),
    ("inet6", col("c", "inet6")),
    ("inet4", col("c", "inet4")),
    ("uuid", col("c", "uuid")),
])
def test_column_types(decl: str, expected: ColumnDef) -> None:
    assert one_column(decl) == expected


def test_json_charset_ignores_a_latin1_table_default() -> None:
    assert one_column("json", "latin1") == col("c", "json", charset="utf8mb4")
    assert one_column("longtext CHECK (json_valid(c))", "latin1") == col("c", "json", charset="latin1")


@pytest.mark.parametrize("attributes", [
    "NOT NULL DEFAULT 'x' COMMENT 'a ''quoted'' comment'",
    "NOT NULL DEFAULT _utf8mb4'x' COLLATE utf8mb4_bin",
    "NOT NULL DEFAULT 'a' 'b' INVISIBLE",
    "NOT NULL DEFAULT (concat('a', 'b'))",
    "NOT NULL DEFAULT NULL_VALUE()",
    "GENERATED ALWAYS AS (concat(a, ',', b)) STORED NOT NULL",
    "AS (upper(a)) PERSISTENT NOT NULL",
    "AS (upper(a)) VIRTUAL NOT NULL",
    "NOT NULL /*M!100301 COMPRESSED*/",
    "NOT NULL COMPRESSED=zlib",
    "NOT NULL /*!80023 INVISIBLE */",
    "NOT NULL COLUMN_FORMAT DYNAMIC STORAGE DISK",
    "NOT NULL UNIQUE KEY",
    "NOT NULL REFERENCES other (id) MATCH FULL ON DELETE SET NULL ON UPDATE CASCADE",
    "NOT NULL CONSTRAINT c1 CHECK (c <> '') NOT ENFORCED",
    "NOT NULL CHECK (c IS NOT NULL OR c IS NULL)",
    "NOT NULL WITHOUT SYSTEM VERSIONING",
    "NOT NULL ENGINE_ATTRIBUTE='{}'",
    "NOT NULL -- comment, with a comma\n",
    "NOT NULL # another comment\n",
    "NOT NULL /* and (another) */",
])
def test_column_attributes_that_do_not_change_the_type(attributes: str) -> None:
    assert one_column(f"varchar(10) {attributes}") == col("c", "varchar", 10, charset="utf8mb4", nullable=False)


@pytest.mark.parametrize("default", ["NULL", "-1", "+1.5e3", "b'101'", "0x1F", "x'ff'", "TRUE",
                                     "current_timestamp", "CURRENT_TIMESTAMP(6)", "(1 + 1)", "DATE '2024-01-01'",
                                     "NEXT VALUE FOR db.seq", "nextval(seq)", "'NOT NULL'"])
def test_default_values_are_skipped_whole(default: str) -> None:
    c = one_column(f"bigint DEFAULT {default} NULL COMMENT 'x'")
    assert c == col("c", "bigint", 20)


# ----------------------------------------------------------------------------------- whole tables

SHOW_CREATE = """CREATE TABLE `orders` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `customer` varchar(40) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL,
  `we ird``col` int(11) DEFAULT NULL COMMENT 'hello, world',
  `line` smallint(6) NOT NULL,
  `total` decimal(12,2) NOT NULL DEFAULT 0.00,
  `status` enum('new','paid','void') NOT NULL DEFAULT 'new',
  `doc` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`doc`)),
  `upper_customer` varchar(40) GENERATED ALWAYS AS (ucase(`customer`)) VIRTUAL,
  `created` timestamp(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`id`,`line`),
  UNIQUE KEY `uk` (`customer`,`line`),
  KEY `k_status` (`status`) USING BTREE COMMENT 'x',
  FULLTEXT KEY `ft` (`customer`),
  CONSTRAINT `fk` FOREIGN KEY (`customer`) REFERENCES `customers` (`name`) ON DELETE SET NULL,
  CONSTRAINT `CONSTRAINT_1` CHECK (`total` >= 0)
) ENGINE=InnoDB AUTO_INCREMENT=17 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='orders, all of them'
 PARTITION BY KEY (`id`) PARTITIONS 4"""


def test_show_create_table_output() -> None:
    assert table(SHOW_CREATE, charset="latin1") == TableSchema(
        db="db", table="orders", primary_key=("id", "line"), charset="utf8mb4", columns=(
            col("id", "int", 10, unsigned=True, nullable=False),
            col("customer", "varchar", 40, charset="latin1", nullable=False),
            col("we ird`col", "int", 11),
            col("line", "smallint", 6, nullable=False),
            col("total", "decimal", 12, 2, nullable=False),
            col("status", "enum", charset="utf8mb4", values=("new", "paid", "void"), nullable=False),
            col("doc", "json", charset="utf8mb4"),
            col("upper_customer", "varchar", 40, charset="utf8mb4"),
            col("created", "timestamp", 6, nullable=False),
        ))


def test_user_ddl_equals_the_servers_show_create_table() -> None:
    user = ("CREATE TABLE orders (id int unsigned not null auto_increment, customer varchar(40) "
            "character set latin1 not null, `we ird``col` int comment 'hello, world', line smallint, "
            "total numeric(12,2) not null default 0, status enum('new','paid','void') not null default 'new', "
            "doc json, upper_customer varchar(40) as (upper(customer)), created timestamp(6) not null "
            "default current_timestamp(6), primary key (id, line), unique key uk (customer, line)) "
            "default charset=utf8mb4")
    assert table(user, charset="latin1") == table(SHOW_CREATE, charset="latin1")


MYSQL8_SHOW_CREATE = """CREATE TABLE `t` (
  `id` int NOT NULL AUTO_INCREMENT,
  `flag` tinyint(1) NOT NULL DEFAULT '0',
  `u` int unsigned DEFAULT NULL,
  `j` json DEFAULT NULL,
  `d` datetime DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  `g` point NOT NULL /*!80003 SRID 4326 */,
  `v` varchar(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci DEFAULT NULL,
  `w` varchar(10) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `e` int GENERATED ALWAYS AS ((`id` + 1)) VIRTUAL,
  `inv` int DEFAULT NULL /*!80023 INVISIBLE */,
  `y` year DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `idx` ((lower(`v`))),
  SPATIAL KEY `g` (`g`),
  CONSTRAINT `c1` CHECK ((`id` > 0)) /*!80016 NOT ENFORCED */
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci \
/*!80016 DEFAULT ENCRYPTION='N' */"""


def test_mysql8_show_create_table_output() -> None:
    # MySQL 8.0.19+ prints no integer display widths: the schema fills MariaDB's, so both flavours agree.
    assert table(MYSQL8_SHOW_CREATE, charset="latin1") == TableSchema(
        db="db", table="t", primary_key=("id",), charset="utf8mb4", columns=(
            col("id", "int", 11, nullable=False), col("flag", "tinyint", 1, nullable=False),
            col("u", "int", 10, unsigned=True), col("j", "json", charset="utf8mb4"), col("d", "datetime"),
            col("g", "point", nullable=False), col("v", "varchar", 10, charset="utf8mb3"),
            col("w", "varchar", 10, charset="utf8mb4"), col("e", "int", 11), col("inv", "int", 11),
            col("y", "year", 4)))


def test_mysql8_binlog_forms() -> None:
    h = History()
    # MySQL 8 appends the DDL's xid as a comment, and logs an atomic CREATE ... SELECT with START TRANSACTION
    h.run("CREATE TABLE t (a int, period int) START TRANSACTION")
    h.run("ALTER TABLE t ADD COLUMN b int /* xid=37 */")
    h.run("ALTER TABLE t DROP period, ADD PERIOD FOR p (a, b)")
    assert h.of("t").names == ("a", "b")


@pytest.mark.parametrize(("sql", "charset", "expected"), [
    ("CREATE TABLE t (a varchar(3))", "latin1", "latin1"),
    ("CREATE TABLE t (a varchar(3)) CHARSET latin1", None, "latin1"),
    ("CREATE TABLE t (a varchar(3)) DEFAULT CHARACTER SET = latin1", "utf8mb4", "latin1"),
    ("CREATE TABLE t (a varchar(3)) COLLATE latin1_bin", "utf8mb4", "latin1"),
    ("CREATE TABLE t (a varchar(3)) ENGINE=InnoDB DEFAULT CHARSET=utf8 /* trailing */", "latin1", "utf8mb3"),
    ("CREATE TABLE t (a varchar(3)) /*!40101 DEFAULT CHARSET=latin7 */", "utf8mb4", "latin7"),
    ("CREATE TABLE t (a varchar(3)) CHARSET=DEFAULT", "koi8r", "koi8r"),
    ("CREATE TABLE t (a varchar(3))", None, None),
])
def test_table_charset(sql: str, charset: str | None, expected: str | None) -> None:
    schema = table(sql, charset=charset)
    assert schema.charset == expected
    assert schema.columns[0].charset == expected


def test_primary_keys() -> None:
    assert table("CREATE TABLE t (a int, b int primary key)").primary_key == ("b",)
    assert table("CREATE TABLE t (a int KEY, b int)").primary_key == ("a",)
    pk = table("CREATE TABLE t (Name varchar(20), b int, CONSTRAINT pk PRIMARY KEY USING BTREE (name(5), B DESC))")
    assert pk.primary_key == ("Name", "b")  # spelled as the columns are
    assert [c.nullable for c in pk.columns] == [False, False]  # key columns are NOT NULL
    assert table("CREATE TABLE t (a int, UNIQUE KEY (a))").primary_key == ()


def test_identifiers_names_and_qualification() -> None:
    s = table("CREATE TABLE IF NOT EXISTS `other db`.`Mixed Case` (`select` int, `a``b` int, "
              "`ünï` int, \"dq\" int, 1abc int)")
    assert (s.db, s.table) == ("other db", "Mixed Case")
    assert s.names == ("select", "a`b", "ünï", "dq", "1abc")
    assert table("CREATE OR REPLACE TABLE t (period int, PERIOD FOR p (a, b))").names == ("period",)


def test_sequences_of_statements_end_cleanly() -> None:
    assert table("CREATE TABLE t (a int);").names == ("a",)


@pytest.mark.parametrize(("sql", "message"), [
    ("CREATE TABLE t (c frobnicate(3))",
     "Schema history of `db`.`t`: cannot parse CREATE TABLE: unknown type 'frobnicate' for column `c` at line 1, "
     "column 19, near 'frobnicate(3))'. Statement: CREATE TABLE t (c frobnicate(3)) — Capture of this table "
     "stops here; re-snapshot the table (its schema is then read again with SHOW CREATE TABLE) to resume it."),
    ("CREATE TABLE t (c int,\n d varchar)",
     "Schema history of `db`.`t`: cannot parse CREATE TABLE: expected the length of VARCHAR column `d` at line 2, "
     "column 11, near ')'. Statement: CREATE TABLE t (c int, d varchar) — Capture of this table stops here; "
     "re-snapshot the table (its schema is then read again with SHOW CREATE TABLE) to resume it."),
    ("CREATE TABLE t (c int",
     "Schema history of `db`.`t`: cannot parse CREATE TABLE: expected ')' at the end of the statement. "
     "Statement: CREATE TABLE t (c int — Capture of this table stops here; re-snapshot the table (its schema is "
     "then read again with SHOW CREATE TABLE) to resume it."),
    ("CREATE TABLE t (c int) WITH SYSTEM VERSIONING",
     "Schema history of `db`.`t`: cannot build the schema: the table is WITH SYSTEM VERSIONING: its hidden "
     "row_start/row_end columns are in the binlog rows but not in its DDL, which this history does not model. "
     "Statement: CREATE TABLE t (c int) WITH SYSTEM VERSIONING — Capture of this table stops here; re-snapshot "
     "the table (its schema is then read again with SHOW CREATE TABLE) to resume it."),
    ("CREATE TABLE t LIKE u",
     "Schema history of `db`.`t`: cannot build the schema: CREATE TABLE ... LIKE copies another table's schema; "
     "apply it with apply_ddl. Statement: CREATE TABLE t LIKE u — Capture of this table stops here; "
     "re-snapshot the table (its schema is then read again with SHOW CREATE TABLE) to resume it."),
    ("CREATE TABLE t (c int, c int)",
     "Schema history of `db`.`t`: cannot build the schema: column `c` would exist twice. Statement: "
     "CREATE TABLE t (c int, c int) — Capture of this table stops here; re-snapshot the table (its schema is "
     "then read again with SHOW CREATE TABLE) to resume it."),
    ("CREATE TABLE t (c int) 'unterminated",
     "Schema history of `db`.`t`: cannot parse CREATE TABLE: cannot split it into tokens: ' opened at line 1, "
     "column 24 is never closed. "
     "Statement: CREATE TABLE t (c int) 'unterminated — Capture of this table stops here; re-snapshot the table "
     "(its schema is then read again with SHOW CREATE TABLE) to resume it."),
])
def test_parse_create_table_errors(sql: str, message: str) -> None:
    with pytest.raises(DdlError) as info:
        table(sql)
    assert str(info.value) == message


def test_long_statements_are_shortened_in_messages() -> None:
    sql = "CREATE TABLE t (" + ", ".join(f"c{i} int" for i in range(100)) + ", x nope)"
    with pytest.raises(DdlError) as info:
        table(sql)
    statement = str(info.value).split("Statement: ")[1].split(" — ")[0]
    assert statement == sql[:300] + "…"


def test_charset_of_collation() -> None:
    assert charset_of_collation("latin1_swedish_ci") == "latin1"
    assert charset_of_collation("UTF8MB4_GENERAL_CI") == "utf8mb4"
    assert charset_of_collation("utf8_bin") == "utf8mb3"
    assert charset_of_collation("utf16_bin") == "utf16"
    assert charset_of_collation("binary") == "binary"
    assert charset_of_collation("uca1400_ai_ci") is None


# ----------------------------------------------------------------------------- non-schema statements

@pytest.mark.parametrize("sql", [
    "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT `s1`", "ROLLBACK TO SAVEPOINT s1", "XA START 'x'",
    "SET @a = 1", "FLUSH TABLES", "ANALYZE TABLE t", "OPTIMIZE TABLE t", "GRANT SELECT ON *.* TO 'u'@'%'",
    "INSERT INTO t VALUES (1)", "# Dummy event replacing event type 160 that slave cannot handle.",
    "CREATE USER 'u'@'%' IDENTIFIED BY 'p'", "ALTER USER 'u'@'%' IDENTIFIED BY 'q'", "DROP USER 'u'",
    "CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN ALTER TABLE t ADD c int; END",
    "CREATE OR REPLACE ALGORITHM=UNDEFINED VIEW v AS SELECT 1", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH "
    "ROW SET NEW.a = 1", "DROP VIEW IF EXISTS v", "DROP TRIGGER tr", "DROP PROCEDURE p", "ALTER VIEW v AS SELECT 2",
    "CREATE INDEX i ON t (a)", "CREATE UNIQUE INDEX i ON t (a)", "DROP INDEX i ON t", "CREATE SEQUENCE s",
    "CREATE TEMPORARY TABLE tmp (a int)", "DROP TEMPORARY TABLE IF EXISTS `tmp` /* generated by server */",
    "RENAME USER 'a' TO 'b'", "/*!40000 ALTER TABLE `t` DISABLE KEYS */", "ALTER EVENT e DISABLE",
    "CREATE FUNCTION f() RETURNS int RETURN 1",
])
def test_statements_that_change_no_schema(sql: str) -> None:
    t = TableSchema("db", "t", (col("a", "int", 11),))
    assert apply_ddl(sql, "db", {("db", "t"): t}, {"db": "utf8mb4"}).empty


def test_non_ddl_is_recognised_without_tokenizing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(sql: str) -> list[object]:
        raise AssertionError(f"tokenized {sql!r}")

    monkeypatch.setattr(mysqlddl, "_tokenize", refuse)
    for sql in ("BEGIN", "COMMIT", "XA END 'x'", "SAVEPOINT a", "/* c */ INSERT INTO t VALUES (1)",
                "SET TIMESTAMP=1", "# Dummy event"):
        assert not is_schema_statement(sql)
        assert apply_ddl(sql, "db", {}, {}) is apply_ddl("BEGIN", None, {}, {})
    for sql in ("alter table t add c int", " /* c */ DROP TABLE t", "/*!40000 ALTER TABLE t ENABLE KEYS */",
                "/*Migration 12*/ RENAME TABLE a TO b", "-- c\nTRUNCATE t", "# c\nCREATE TABLE t (a int)"):
        assert is_schema_statement(sql)


# -------------------------------------------------------------------------------------- CREATE TABLE

def test_create_table_takes_the_database_charset() -> None:
    h = History(charsets={"db": "latin1", "other": "utf8mb4"})
    assert h.create("CREATE TABLE t (a varchar(3))").columns[0].charset == "latin1"
    assert h.create("CREATE TABLE other.t (a varchar(3))").columns[0].charset == "utf8mb4"
    assert set(h.schemas) == {("db", "t"), ("other", "t")}


def test_create_table_if_not_exists_keeps_the_existing_table() -> None:
    h = History()
    h.create("CREATE TABLE t (a int)")
    assert h.run("CREATE TABLE IF NOT EXISTS t (b int)").empty
    assert h.of("t").names == ("a",)
    h.run("CREATE OR REPLACE TABLE t (b int)")
    assert h.of("t").names == ("b",)


def test_create_table_like() -> None:
    h = History()
    h.create("CREATE TABLE t (a int primary key, b varchar(3))")
    h.run("CREATE TABLE u LIKE t")
    h.run("CREATE TABLE IF NOT EXISTS `other`.`v` (LIKE `db`.`t`)")
    assert h.of("u") == TableSchema("db", "u", h.of("t").columns, ("a",), "utf8mb4")
    assert h.of("other.v").columns == h.of("t").columns
    r = h.run("CREATE TABLE w LIKE missing")
    assert r.failed == (DdlFailure("db", "w", (
        "Schema history of `db`.`w`: CREATE TABLE ... LIKE `db`.`missing`, a table not in the schema history, so "
        "the new table's columns are unknown. Statement: CREATE TABLE w LIKE missing — Capture of this table stops "
        "here; re-snapshot the table (its schema is then read again with SHOW CREATE TABLE) to resume it.")),)
    assert not r.changed


def test_create_table_as_generated_by_mariadb_for_a_ctas() -> None:
    # Row-based binlogs log CREATE TABLE ... SELECT as the table's full definition, without options.
    h = History(charsets={"db": "latin1"})
    s = h.create("CREATE TABLE `a3` (\n  `a` varchar(20) NOT NULL,\n  `b` int(11) NOT NULL,\n"
                 "  `x` int(11) DEFAULT NULL\n)")
    assert s.columns == (col("a", "varchar", 20, charset="latin1", nullable=False),
                         col("b", "int", 11, nullable=False), col("x", "int", 11))


def test_create_table_select_in_statement_format_fails_the_table() -> None:
    r = History().run("CREATE TABLE t AS SELECT * FROM u")
    assert [(f.db, f.table) for f in r.failed] == [("db", "t")]
    assert "CREATE TABLE ... SELECT takes its columns from a query" in r.failed[0].message
    r = History().run("CREATE TABLE t (a int) (SELECT 1 AS b)")
    assert [(f.db, f.table) for f in r.failed] == [("db", "t")]


# --------------------------------------------------------------------------------------- ALTER TABLE

def base_history() -> History:
    h = History()
    h.create("CREATE TABLE t (id int NOT NULL, Name varchar(10), qty int unsigned, note text, "
             "PRIMARY KEY (id)) CHARSET latin1")
    return h


def test_add_columns_first_after_and_several() -> None:
    h = base_history()
    h.run("ALTER TABLE t ADD COLUMN a int FIRST, ADD b varchar(3) AFTER `name`, ADD c bigint, "
          "ADD COLUMN d int AFTER c")
    assert h.of("t").names == ("a", "id", "Name", "b", "qty", "note", "c", "d")
    assert h.of("t").column("b") == col("b", "varchar", 3, charset="latin1")
    h.run("ALTER TABLE t ADD COLUMN (e int, f char(2) NOT NULL)")
    assert h.of("t").names[-2:] == ("e", "f")
    h.run("ALTER TABLE t ADD COLUMN IF NOT EXISTS e bigint, ADD IF NOT EXISTS g int")
    assert h.of("t").column("e") == col("e", "int", 11)
    assert h.of("t").names[-1] == "g"


def test_drop_columns() -> None:
    h = base_history()
    h.run("ALTER TABLE t DROP COLUMN qty, DROP note, DROP COLUMN IF EXISTS nothing")
    assert h.of("t").names == ("id", "Name")
    h.run("ALTER TABLE t DROP name")  # column names are case-insensitive
    assert h.of("t").names == ("id",)


def test_change_modify_rename_column() -> None:
    h = base_history()
    h.run("ALTER TABLE t CHANGE COLUMN qty quantity bigint NOT NULL")
    assert h.of("t").column("quantity") == col("quantity", "bigint", 20, nullable=False)
    assert h.of("t").names == ("id", "Name", "quantity", "note")
    h.run("ALTER TABLE t MODIFY NAME varchar(20) CHARACTER SET utf8mb4 FIRST")
    assert h.of("t").names == ("NAME", "id", "quantity", "note")  # MODIFY takes the statement's spelling
    assert h.of("t").column("name") == col("NAME", "varchar", 20, charset="utf8mb4")
    h.run("ALTER TABLE t MODIFY note tinytext")  # a redefined column takes the table's default charset
    assert h.of("t").column("note") == col("note", "tinytext", charset="latin1")
    h.run("ALTER TABLE t RENAME COLUMN id TO ident, CHANGE quantity q int AFTER note")
    assert h.of("t").names == ("NAME", "ident", "note", "q")
    assert h.of("t").primary_key == ("ident",)


def test_alter_resolves_names_against_the_table_before_the_statement() -> None:
    h = History()
    h.create("CREATE TABLE t (a int, b bigint, c int)")
    h.run("ALTER TABLE t RENAME COLUMN a TO b, RENAME COLUMN b TO a")  # a swap, as the server allows
    assert [(c.name, c.type) for c in h.of("t").columns] == [("b", "int"), ("a", "bigint"), ("c", "int")]
    h.run("ALTER TABLE t ADD x int AFTER a2, CHANGE b a2 int")  # AFTER names the new name
    assert h.of("t").names == ("a2", "x", "a", "c")
    h.run("ALTER TABLE t MODIFY a2 int AFTER a, MODIFY a bigint AFTER c")  # moves apply in statement order
    assert h.of("t").names == ("x", "a2", "c", "a")
    h.run("ALTER TABLE t DROP a, ADD a varchar(3)")
    assert h.of("t").column("a") == col("a", "varchar", 3, charset="utf8mb4")


def test_primary_key_changes() -> None:
    h = base_history()
    h.run("ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (`name`, qty)")
    assert h.of("t").primary_key == ("Name", "qty")
    assert not h.of("t").column("name").nullable  # type: ignore[union-attr]
    h.run("ALTER TABLE t DROP COLUMN qty")
    assert h.of("t").primary_key == ("Name",)
    h.run("ALTER TABLE t DROP INDEX `PRIMARY`")
    assert h.of("t").primary_key == ()
    h.run("ALTER TABLE t ADD CONSTRAINT pk PRIMARY KEY USING BTREE (id)")
    assert h.of("t").primary_key == ("id",)
    h.run("DROP INDEX `PRIMARY` ON t")
    assert h.of("t").primary_key == ()
    h.run("ALTER TABLE t ADD COLUMN k int PRIMARY KEY FIRST")
    assert (h.of("t").names[0], h.of("t").primary_key) == ("k", ("k",))
    h.run("ALTER TABLE t CHANGE k key2 int")
    assert h.of("t").primary_key == ("key2",)
    assert not h.of("t").column("key2").nullable  # type: ignore[union-attr]


def test_table_charset_changes() -> None:
    h = base_history()
    h.run("ALTER TABLE t ADD c varchar(3), DEFAULT CHARSET=utf8mb4")  # new columns take the new default
    assert (h.of("t").charset, h.of("t").column("c").charset) == ("utf8mb4", "utf8mb4")  # type: ignore[union-attr]
    assert h.of("t").column("name").charset == "latin1"  # type: ignore[union-attr]
    h.run("ALTER TABLE t ENGINE=InnoDB ROW_FORMAT=DYNAMIC CHARACTER SET = ucs2 COLLATE ucs2_bin, ADD d char(1)")
    assert (h.of("t").charset, h.of("t").column("d").charset) == ("ucs2", "ucs2")  # type: ignore[union-attr]
    h.run("ALTER TABLE t COLLATE latin2_general_ci")
    assert h.of("t").charset == "latin2"
    h.run("ALTER TABLE t CHARACTER SET DEFAULT")  # the database's
    assert h.of("t").charset == "utf8mb4"


def test_convert_to_character_set() -> None:
    h = History()
    h.create("CREATE TABLE t (a int, b varchar(3) charset latin1, tt tinytext, t text, m mediumtext, l longtext, "
             "j json, e enum('x'), bl blob) CHARSET latin1")
    h.run("ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, ADD f varchar(3) charset ucs2")
    s = h.of("t")
    assert s.charset == "utf8mb4"
    # TEXT types grow to keep their length in characters; every character column converts
    assert [(c.name, c.type, c.charset) for c in s.columns] == [
        ("a", "int", None), ("b", "varchar", "utf8mb4"), ("tt", "text", "utf8mb4"), ("t", "mediumtext", "utf8mb4"),
        ("m", "longtext", "utf8mb4"), ("l", "longtext", "utf8mb4"), ("j", "json", "utf8mb4"),
        ("e", "enum", "utf8mb4"), ("bl", "blob", None), ("f", "varchar", "utf8mb4")]
    h.run("ALTER TABLE t CONVERT TO CHARSET latin1")  # never shrinks
    assert [c.type for c in h.of("t").columns][2:6] == ["text", "mediumtext", "longtext", "longtext"]
    h.run("ALTER TABLE t CONVERT TO CHARACTER SET binary")
    assert [c.type for c in h.of("t").columns][1:4] == ["varbinary", "blob", "mediumblob"]


def test_alter_rename_table_and_options_only() -> None:
    h = base_history()
    before = h.of("t")
    assert h.run("ALTER TABLE t ENGINE=InnoDB, ALGORITHM=INPLACE, LOCK=NONE, FORCE").empty
    assert h.run("ALTER TABLE t ADD INDEX i (qty), ADD UNIQUE KEY (id), ADD FULLTEXT ft (note), "
                 "ADD CONSTRAINT fk FOREIGN KEY (qty) REFERENCES u (id) ON DELETE SET NULL, "
                 "ADD CONSTRAINT CHECK (qty > 0), DROP FOREIGN KEY fk, DROP CHECK c1, DROP KEY i, "
                 "RENAME INDEX a TO b, ALTER COLUMN qty SET DEFAULT 5, ALTER qty DROP DEFAULT, "
                 "ALTER INDEX i INVISIBLE, ORDER BY id, name, COMMENT 'x', AUTO_INCREMENT = 5").empty
    r = h.run("ALTER TABLE t RENAME TO `Other`.`T2`")
    assert r.renamed == ((("db", "t"), ("Other", "T2")),)
    assert r.dropped == (("db", "t"),)
    assert h.schemas == {("Other", "T2"): TableSchema("Other", "T2", before.columns, before.primary_key, "latin1")}
    h.run("ALTER TABLE Other.T2 ADD z int, RENAME AS t3", db="elsewhere")  # unqualified: the session's db
    assert h.schemas[("elsewhere", "t3")].names[-1] == "z"


def test_mariadb_alter_forms() -> None:
    h = base_history()
    h.run("ALTER ONLINE IGNORE TABLE IF EXISTS t WAIT 5 ADD COLUMN IF NOT EXISTS x int, "
          "CHANGE COLUMN IF EXISTS nothing other int, MODIFY IF EXISTS nothing int AFTER id, "
          "DROP COLUMN IF EXISTS nothing, DROP INDEX IF EXISTS i, ADD KEY IF NOT EXISTS (x)")
    assert h.of("t").names == ("id", "Name", "qty", "note", "x")
    h.run("ALTER TABLE t NOWAIT DROP x")
    assert h.of("t").names == ("id", "Name", "qty", "note")


def test_alter_partitioning_is_no_schema_change() -> None:
    h = base_history()
    for sql in ("ALTER TABLE t PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (10), "
                "PARTITION p1 VALUES LESS THAN MAXVALUE)",
                "ALTER TABLE t DROP PARTITION p0, p1", "ALTER TABLE t ADD PARTITION (PARTITION p2 VALUES IN (1))",
                "ALTER TABLE t REMOVE PARTITIONING", "ALTER TABLE t COALESCE PARTITION 2",
                "ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE u WITHOUT VALIDATION",
                "ALTER TABLE t DISCARD TABLESPACE", "ALTER TABLE t ENABLE KEYS"):
        assert h.run(sql).empty, sql


# ---------------------------------------------------------------------- DROP, RENAME, TRUNCATE, DATABASE

def test_drop_tables_as_mariadb_logs_them() -> None:
    h = History()
    for name in ("a", "b", "c"):
        h.create(f"CREATE TABLE {name} (x int)")
    r = h.run("DROP TABLE `a` /* generated by server */")
    assert r.dropped == (("db", "a"),)
    r = h.run("DROP TABLE IF EXISTS `b`,`nonexist`,`other`.`c` /* generated by server */")
    assert r.dropped == (("db", "b"), ("db", "nonexist"), ("other", "c"))
    assert set(h.schemas) == {("db", "c")}
    assert h.run("DROP TEMPORARY TABLE IF EXISTS `c` /* generated by server */").empty
    assert h.run("DROP TABLES c RESTRICT").dropped == (("db", "c"),)
    assert h.schemas == {}


def test_rename_tables() -> None:
    h = History()
    a = h.create("CREATE TABLE a (x int)")
    b = h.create("CREATE TABLE b (y int)")
    r = h.run("RENAME TABLE a TO tmp, b TO a, tmp TO b")  # a swap through a temporary name
    assert r.renamed == ((("db", "a"), ("db", "tmp")), (("db", "b"), ("db", "a")), (("db", "tmp"), ("db", "b")))
    assert r.dropped == ()
    assert h.of("a").names == b.names and h.of("b").names == a.names
    assert (h.of("a").table, h.of("b").table) == ("a", "b")
    r = h.run("RENAME TABLE `db`.`a` TO `db2`.`a`, missing TO found")
    assert h.of("db2.a").names == ("y",)
    assert r.dropped == (("db", "a"),)
    assert [(f.db, f.table) for f in r.failed] == [("db", "found")]
    assert r.failed[0].message.startswith("Schema history of `db`.`found`: renamed from `db`.`missing`, a table "
                                          "not in the schema history, so its columns are unknown. Statement:")


def test_truncate() -> None:
    h = base_history()
    r = h.run("TRUNCATE TABLE t")
    assert (r.truncated, r.changed, r.dropped) == ((("db", "t"),), {}, ())
    assert h.run("truncate other.u").truncated == (("other", "u"),)


def test_databases() -> None:
    h = History(charsets={"db": "utf8mb4"})
    assert h.run("CREATE DATABASE shop CHARACTER SET latin1").db_charsets == {"shop": "latin1"}
    h.create("CREATE TABLE shop.t (a varchar(3))", db="db")
    assert h.schemas[("shop", "t")].charset == "latin1"
    assert h.run("CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4").empty
    assert h.run("ALTER DATABASE shop DEFAULT COLLATE = utf8mb4_bin").db_charsets == {"shop": "utf8mb4"}
    assert h.schemas[("shop", "t")].charset == "latin1"  # existing tables keep theirs
    assert h.run("ALTER SCHEMA CHARACTER SET koi8r", db="shop").db_charsets == {"shop": "koi8r"}
    assert h.run("CREATE SCHEMA plain").db_charsets == {}  # no charset given, none known for the server
    assert h.run("CREATE DATABASE plain2", server_charset="latin2").db_charsets == {"plain2": "latin2"}
    r = h.run("DROP DATABASE IF EXISTS `shop`")
    assert (r.dropped_databases, r.dropped) == (("shop",), (("shop", "t"),))
    assert "shop" not in h.charsets and ("shop", "t") not in h.schemas
    h.create("CREATE TABLE shop2_t (a int)")
    h.run("CREATE DATABASE other CHARSET ascii")
    h.create("CREATE TABLE other.x (a int)")
    r = h.run("CREATE OR REPLACE DATABASE other")
    assert r.dropped == (("other", "x"),)


# --------------------------------------------------------------------------------------------- failures

REMEDY = ("Capture of this table stops here; re-snapshot the table (its schema is then read again with "
          "SHOW CREATE TABLE) to resume it.")


def test_alter_of_an_unknown_table_fails_it() -> None:
    r = History().run("ALTER TABLE shop.orders ADD c int")
    assert r.failed == (DdlFailure("shop", "orders", (
        "Schema history of `shop`.`orders`: ALTER TABLE of a table not in the schema history (neither in the "
        "snapshot nor created by DDL since), so its columns are unknown. Statement: ALTER TABLE shop.orders ADD "
        f"c int — {REMEDY}")),)
    assert not r.changed and not r.dropped


def test_unparseable_alter_fails_only_its_table() -> None:
    h = base_history()
    h.create("CREATE TABLE other (a int)")
    r = h.run("ALTER TABLE t ADD COLUMN c frobnicate(3) NOT NULL")
    assert r.failed == (DdlFailure("db", "t", (
        "Schema history of `db`.`t`: cannot parse the statement: unknown type 'frobnicate' for column `c` at "
        "line 1, column 28, near 'frobnicate(3) NOT NULL'. Statement: ALTER TABLE t ADD COLUMN c frobnicate(3) "
        f"NOT NULL — {REMEDY}")),)
    assert not r.changed
    assert h.of("other").names == ("a",)


def test_alter_that_does_not_fit_the_known_schema() -> None:
    h = base_history()
    r = h.run("ALTER TABLE t DROP COLUMN ghost, ADD c int")
    assert r.failed == (DdlFailure("db", "t", (
        "Schema history of `db`.`t`: the ALTER TABLE does not fit the known schema (DROP column `ghost`, which "
        "the table does not have (columns: id, Name, qty, note)). Statement: ALTER TABLE t DROP COLUMN ghost, ADD "
        f"c int — {REMEDY}")),)
    assert not r.changed
    r = h.run("ALTER TABLE t ADD c int AFTER ghost")
    assert "(AFTER `ghost`: no such column)" in r.failed[0].message
    r = h.run("ALTER TABLE t ADD qty int")
    assert "(column `qty` would exist twice)" in r.failed[0].message
    r = h.run("ALTER TABLE t ADD SYSTEM VERSIONING")
    assert r.failed[0].message.startswith("Schema history of `db`.`t`: ADD SYSTEM VERSIONING adds hidden "
                                          "row_start/row_end columns, which this history does not model.")


def test_a_statement_that_cannot_be_tokenized_is_attributed_by_regex() -> None:
    h = base_history()
    r = h.run("RENAME TABLE t TO `u`, `other db`.v TO w 'oops")
    assert [(f.db, f.table) for f in r.failed] == [("db", "t"), ("db", "u"), ("other db", "v"), ("db", "w")]
    assert r.failed[0].message == (
        "Schema history of `db`.`t`: cannot parse the statement: cannot split it into tokens: ' opened at line 1, "
        f"column 42 is never closed. Statement: RENAME TABLE t TO `u`, `other db`.v TO w 'oops — {REMEDY}")
    r = h.run("ALTER TABLE /* c */ `x``y` ADD c varchar(3) DEFAULT 'oops")
    assert [(f.db, f.table) for f in r.failed] == [("db", "x`y")]
    r = h.run("DROP TABLE IF EXISTS a, b.c 'oops")
    assert [(f.db, f.table) for f in r.failed] == [("db", "a"), ("b", "c")]
    r = h.run("DROP DATABASE db 'oops")
    assert [(f.db, f.table) for f in r.failed] == [("db", "t")]
    assert h.of("t").names == ("id", "Name", "qty", "note")


def test_a_syntax_error_in_a_multi_table_statement_stops_the_tables_named_so_far() -> None:
    h = History()
    h.create("CREATE TABLE a (x int)")
    r = h.run("RENAME TABLE a TO b, c TO (d)")
    assert [(f.db, f.table) for f in r.failed] == [("db", "a"), ("db", "b"), ("db", "c")]
    assert "expected a table name at line 1, column 27, near '(d)'" in r.failed[0].message
    assert h.of("a").names == ("x",)  # nothing of the statement applied


def test_result_applied_to_leaves_failed_tables_as_they_were() -> None:
    t = TableSchema("db", "t", (col("a", "int", 11),))
    r = apply_ddl("ALTER TABLE t ADD b blah", "db", {("db", "t"): t}, {})
    assert r.applied_to({("db", "t"): t}, {}) == ({("db", "t"): t}, {})
