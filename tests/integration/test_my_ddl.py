"""Real MariaDB 10.11: DDL → schemas, checked against the server itself.

`parse_create_table` of SHOW CREATE TABLE output is compared with information_schema (types, widths,
unsigned, charsets, nullability, primary keys) and ENUM/SET members with the values the server stores.
Then a series of DDL statements runs on the server; after each one its QueryEvents are read from the
binlog with BinLogStreamReader and applied with `apply_ddl` to the history that started from the
snapshot's SHOW CREATE TABLE, and the history must equal the server's SHOW CREATE TABLE of every table
at that point (so a wrong step cannot hide behind a later one).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import QueryEvent

from cdc.readers.mysqlddl import DdlResult, apply_ddl, parse_create_table
from cdc.readers.mysqlschema import TableSchema
from tests.servers.mariadb import MariaDbServer

Key = tuple[str, str]

TABLES = [
    """CREATE TABLE types (
      id int unsigned NOT NULL AUTO_INCREMENT, a tinyint(1), b bool, c smallint(5) unsigned zerofill, d mediumint,
      e bigint unsigned not null default 5, e2 int8 unsigned, e3 middleint, e4 int zerofill,
      f decimal(12,3), g numeric(5), g2 decimal, h float, i double, j float(7,3), k double precision, l real,
      f24 float(24), f25 float(25), be double(10,2) unsigned, m bit(5), n bit,
      o char(3) character set latin1, p varchar(20) collate latin1_swedish_ci, q binary(4), r varbinary(10),
      s tinytext, t text, u mediumtext, v longtext charset utf8, w tinyblob, x blob, y mediumblob, z longblob,
      aa date, ab datetime(6), ac timestamp(3) null, ad time(2), ae year, ah json,
      ai int generated always as (id + 1) virtual, aj varchar(10) as (upper(s)) stored,
      `we ird``col` int comment 'hello, world', ak char, al text(100), am national char(3), an nchar varchar(4),
      ao dec(3,1), ap fixed(4,2), aq int4, ar int8, at long varchar, au long, av long varbinary, aw boolean,
      ax varchar(30) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, ay text binary, az geometry, ba point,
      bb inet6, bc uuid, bd blob(300), bh timestamp not null default current_timestamp on update current_timestamp,
      bk varchar(5) ascii, bl varchar(5) unicode, bn char byte, bo varchar(20) not null default 'x' comment 'c''mt',
      bp varchar(3) character set binary, bq text charset binary, br char(3) charset binary,
      bs text /*M!100301 COMPRESSED*/, bt int invisible, bu linestring, bv inet4,
      PRIMARY KEY (id, e), KEY k1 (a), UNIQUE KEY (b), FULLTEXT (t), CHECK (a > 0)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='tbl'""",
    """CREATE TABLE latin (
      a varchar(10), b char(2) charset utf8mb4, c text(100), d text(300), e enum('x','y'), f set('p','q'),
      g varchar(4) collate utf8mb4_unicode_ci, h tinytext, i varchar(3) collate latin1_bin
    ) CHARSET latin1""",
    """CREATE TABLE members (
      id int primary key, e enum('a','b''c','d,e','back\\\\slash','new\\nline','tab\\t','é','dq"x','  spaced  '),
      s set('x','y z'' ','w'), e2 enum('ä','ö') character set latin1
    )""",
    """CREATE TABLE `Keys2` (name varchar(20), `Line` int, amount decimal(9,2),
      CONSTRAINT pk PRIMARY KEY USING BTREE (name(5), line DESC))""",
    "CREATE TABLE nopk (a int, b varchar(3) not null, UNIQUE KEY (b)) COLLATE utf8mb4_unicode_ci",
]


def server_charset(srv: MariaDbServer) -> str:
    with srv.connect() as c, c.cursor() as cur:
        cur.execute("SELECT @@character_set_server")
        row = cur.fetchone()
        assert row is not None
        return str(row[0])


def one(cur: Any) -> Any:
    row = cur.fetchone()
    assert row is not None
    return row


def db_charsets(cur: Any, dbs: list[str]) -> dict[str, str]:
    cur.execute("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
                f"WHERE SCHEMA_NAME IN ({', '.join(['%s'] * len(dbs))})", dbs)
    return {str(name): str(cs) for name, cs in cur.fetchall()}


def truth(cur: Any, dbs: list[str]) -> dict[Key, TableSchema]:
    """Every base table of `dbs` as the server's SHOW CREATE TABLE defines it."""
    charsets = db_charsets(cur, dbs)
    cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' "
                f"AND TABLE_SCHEMA IN ({', '.join(['%s'] * len(dbs))})", dbs)
    out: dict[Key, TableSchema] = {}
    for db, name in cur.fetchall():
        cur.execute(f"SHOW CREATE TABLE `{db}`.`{name.replace('`', '``')}`")
        out[(db, name)] = parse_create_table(one(cur)[1], db, charsets.get(db))
    return out


# ------------------------------------------------------------------------- SHOW CREATE TABLE vs the catalog

INTEGERS = {"tinyint", "smallint", "mediumint", "int", "bigint"}


def expected_column(row: dict[str, Any], json_columns: set[str]) -> dict[str, Any]:
    """What information_schema says about a column, in ColumnDef's terms."""
    data_type, column_type = row["DATA_TYPE"], row["COLUMN_TYPE"]
    width = re.match(r"\w+\((\d+)(?:,(\d+))?\)", column_type)
    length: int | None = None
    scale: int | None = None
    if data_type in INTEGERS or data_type == "year":
        length = int(width[1]) if width else None
    elif data_type == "decimal":
        length, scale = row["NUMERIC_PRECISION"], row["NUMERIC_SCALE"]
    elif data_type in ("float", "double") and width:
        length, scale = int(width[1]), int(width[2])
    elif data_type == "bit":
        length = row["NUMERIC_PRECISION"]
    elif data_type in ("char", "varchar", "binary", "varbinary"):
        length = row["CHARACTER_MAXIMUM_LENGTH"]
    elif data_type in ("datetime", "timestamp", "time"):
        length = row["DATETIME_PRECISION"] or None
    json = data_type == "longtext" and row["COLUMN_NAME"] in json_columns
    return {"name": row["COLUMN_NAME"], "type": "json" if json else data_type, "length": length, "scale": scale,
            "unsigned": "unsigned" in column_type, "nullable": row["IS_NULLABLE"] == "YES",
            "charset": row["CHARACTER_SET_NAME"]}


def stored_members(conn: Any, table: str, column: str, kind: str, count: int) -> tuple[str, ...]:
    """The ENUM/SET members as the server stores them: each written by its index (ENUM) or bit (SET)."""
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(f"DELETE FROM `{table}`")
        for i in range(count):
            cur.execute(f"INSERT INTO `{table}` (id, `{column}`) VALUES (%s, %s)",
                        (i, i + 1 if kind == "enum" else 1 << i))
        cur.execute(f"SELECT `{column}` FROM `{table}` ORDER BY id")
        return tuple(str(r[0]) for r in cur.fetchall())


def test_show_create_table_matches_information_schema(my_server: MariaDbServer, my_db: str) -> None:
    with my_server.connect(my_db) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        for ddl in TABLES:
            cur.execute(ddl)
        with conn.cursor(pymysql.cursors.Cursor) as plain:
            db_charset = db_charsets(plain, [my_db])[my_db]
        cur.execute("SELECT TABLE_NAME, CCSA.CHARACTER_SET_NAME AS cs FROM information_schema.TABLES T "
                    "JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY CCSA "
                    "ON CCSA.COLLATION_NAME = T.TABLE_COLLATION WHERE TABLE_SCHEMA = %s", (my_db,))
        table_charsets = {r["TABLE_NAME"]: r["cs"] for r in cur.fetchall()}
        assert len(table_charsets) == len(TABLES)
        for name, table_charset in table_charsets.items():
            cur.execute(f"SHOW CREATE TABLE `{name}`")
            schema = parse_create_table(one(cur)["Create Table"], my_db, db_charset)
            assert (schema.db, schema.table, schema.charset) == (my_db, name, table_charset)

            cur.execute("SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                        "ORDER BY ORDINAL_POSITION", (my_db, name))
            rows = cur.fetchall()
            cur.execute("SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s "
                        "AND TABLE_NAME = %s AND LEVEL = 'Column'", (my_db, name))
            checks = [re.fullmatch(r"json_valid\(`(.+)`\)", r["CHECK_CLAUSE"]) for r in cur.fetchall()]
            json_columns = {m[1] for m in checks if m}
            got = [{k: getattr(c, k) for k in ("name", "type", "length", "scale", "unsigned", "nullable", "charset")}
                   for c in schema.columns]
            assert got == [expected_column(r, json_columns) for r in rows], name

            cur.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
                        "AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", (my_db, name))
            assert schema.primary_key == tuple(r["COLUMN_NAME"] for r in cur.fetchall()), name
            if schema.primary_key:  # (without one, COLUMN_KEY says PRI for a UNIQUE NOT NULL key: not a PK)
                assert {r["COLUMN_NAME"] for r in rows if r["COLUMN_KEY"] == "PRI"} == set(schema.primary_key)

            for c in schema.columns:
                if c.type in ("enum", "set") and name == "members":
                    assert c.values == stored_members(conn, name, c.name, c.type, len(c.values)), c.name


def test_enum_labels_beyond_the_bmp(my_server: MariaDbServer, my_db: str) -> None:
    # MariaDB keeps ENUM labels in utf8mb3 metadata: SHOW CREATE TABLE (and information_schema) print '?'
    # for a 4-byte character that the column stores and returns intact. The DDL text in the binlog has the
    # real label; a snapshot's SHOW CREATE TABLE cannot. Pinned here so the reader knows.
    ddl = "CREATE TABLE emoji (id int primary key, e enum('x','😀'))"
    with my_server.connect(my_db) as conn, conn.cursor() as cur:
        cur.execute(ddl)
        cur.execute("SHOW CREATE TABLE emoji")
        shown = parse_create_table(one(cur)[1], my_db, "utf8mb4")
        assert stored_members(conn, "emoji", "e", "enum", 2) == ("x", "😀")
    from_binlog = apply_ddl(ddl, my_db, {}, {my_db: "utf8mb4"}).changed[(my_db, "emoji")]
    assert from_binlog.columns[1].values == ("x", "😀")
    assert shown.columns[1].values == ("x", "?")


# --------------------------------------------------------------------------- the history from the binlog

class Replay:
    """Runs statements on the server and replays their QueryEvents from the binlog into a history."""

    def __init__(self, srv: MariaDbServer, dbs: list[str]) -> None:
        self.srv = srv
        self.dbs = dbs
        self.conn = srv.connect(dbs[0])
        self.cur = self.conn.cursor()
        self.schemas = truth(self.cur, dbs)
        self.charsets = db_charsets(self.cur, dbs)
        self.server_charset = server_charset(srv)
        self.position = srv.binlog_position()
        self.server_id = random.randint(100_000, 2**31)
        self.stopped: set[Key] = set()
        self.results: list[tuple[str, DdlResult]] = []

    def close(self) -> None:
        self.cur.close()
        self.conn.close()

    def events(self) -> list[tuple[str, str]]:
        file, pos = self.position
        stream = BinLogStreamReader(
            connection_settings={"host": self.srv.host, "port": self.srv.port, "user": "cdc", "password": "cdc"},
            server_id=self.server_id, blocking=False, resume_stream=True, log_file=file, log_pos=pos,
            only_events=[QueryEvent])
        try:
            out = [(ev.query, ev.schema.decode()) for ev in stream]
            if stream.log_file is not None:
                self.position = (stream.log_file, stream.log_pos)
        finally:
            stream.close()
        return out

    def run(self, *statements: str, expect_error: bool = False) -> list[DdlResult]:
        for sql in statements:
            try:
                self.cur.execute(sql)
            except pymysql.MySQLError:
                if not expect_error:
                    raise
        results = []
        for query, db in self.events():
            result = apply_ddl(query, db or None, self.schemas, self.charsets, server_charset=self.server_charset)
            self.schemas, self.charsets = result.applied_to(self.schemas, self.charsets)
            self.stopped |= {(f.db, f.table) for f in result.failed}
            self.results.append((query, result))
            results.append(result)
        self.check(statements)
        return results

    def check(self, statements: tuple[str, ...]) -> None:
        server = {k: v for k, v in truth(self.cur, self.dbs).items() if k not in self.stopped}
        ours = {k: v for k, v in self.schemas.items() if k[0] in self.dbs and k not in self.stopped}
        assert ours == server, statements
        assert {db: self.charsets.get(db) for db in self.dbs} == db_charsets(self.cur, self.dbs), statements


@pytest.fixture
def replay(my_server: MariaDbServer, my_db: str) -> Iterator[Replay]:
    other = my_server.create_database("ddl")
    my_server.execute(my_db, *TABLES)
    r = Replay(my_server, [my_db, other])
    try:
        yield r
    finally:
        r.close()
        my_server.drop_database(other)
        my_server.drop_database(other + "_3")


def test_history_replayed_from_the_binlog_equals_the_server(replay: Replay) -> None:
    main, other = replay.dbs
    r = replay.run
    # columns: add (positions, several, parenthesised), drop, rename (also a swap), change, modify
    r("ALTER TABLE latin ADD COLUMN z1 int FIRST, ADD z2 varchar(5) AFTER b, ADD z3 bigint unsigned, "
      "ADD COLUMN z4 text AFTER z3")
    r("ALTER TABLE latin ADD COLUMN (z5 int, z6 char(2) NOT NULL)", "ALTER TABLE latin DROP COLUMN z5, DROP z1")
    r("ALTER TABLE latin RENAME COLUMN a TO a2", "ALTER TABLE latin RENAME COLUMN b TO c, RENAME COLUMN c TO b")
    r("ALTER TABLE latin CHANGE COLUMN d dd mediumtext NOT NULL", "ALTER TABLE latin CHANGE z2 Z2 int FIRST")
    r("ALTER TABLE latin MODIFY COLUMN a2 varchar(40) CHARACTER SET utf8mb4 AFTER i", "ALTER TABLE latin MODIFY h text")
    r("ALTER TABLE latin ADD x int AFTER a3, CHANGE a2 a3 varchar(40)")
    # primary keys
    r("ALTER TABLE nopk ADD PRIMARY KEY (b)", "ALTER TABLE nopk DROP PRIMARY KEY, ADD CONSTRAINT PRIMARY KEY (a, b)")
    r("ALTER TABLE nopk DROP INDEX `PRIMARY`", "ALTER TABLE nopk ADD COLUMN id int PRIMARY KEY FIRST")
    r("ALTER TABLE nopk CHANGE id ident bigint", "ALTER TABLE `Keys2` DROP COLUMN amount, MODIFY name varchar(30)")
    # charsets
    r("ALTER TABLE latin CONVERT TO CHARACTER SET utf8mb4", "ALTER TABLE latin CONVERT TO CHARSET latin1")
    r("ALTER TABLE latin ADD c1 varchar(3), DEFAULT CHARSET=ucs2",
      "ALTER TABLE latin COLLATE utf8mb4_bin, ADD c2 char(1)")
    # (not `members`: MariaDB 10.11 turns its latin1 ENUM labels 'ä','ö' into '?' on CONVERT TO, a server bug)
    r("ALTER TABLE `Keys2` CONVERT TO CHARACTER SET utf8mb3 COLLATE utf8mb3_bin")
    r(f"ALTER DATABASE `{other}` CHARACTER SET latin1", f"CREATE TABLE `{other}`.o1 (v varchar(3), w json)")
    r(f"CREATE DATABASE `{other}_3` CHARACTER SET koi8r", f"CREATE TABLE `{other}_3`.t (v varchar(3))",
      f"ALTER TABLE `{other}_3`.t RENAME TO `{other}`.from3", f"DROP DATABASE `{other}_3`")
    # tables: like, select, rename (also a swap and across databases), drop, truncate, if (not) exists
    r("CREATE TABLE copy LIKE types", f"CREATE TABLE `{other}`.copy2 (LIKE `{main}`.latin)")
    r("CREATE TABLE ctas AS SELECT id, e, s FROM members", "CREATE TABLE IF NOT EXISTS ctas (different int)")
    r("CREATE TABLE padded (e enum('a ', ' b  '), s set('x  ', 'y'))")  # the server drops trailing spaces
    r("RENAME TABLE copy TO tmp, ctas TO copy, tmp TO ctas", f"RENAME TABLE ctas TO `{other}`.moved, nopk TO nopk2")
    r(f"ALTER TABLE `{other}`.moved ADD COLUMN moved_col int, RENAME AS moved_back")
    r("TRUNCATE TABLE members", "DROP TABLE copy /* a comment */", f"DROP TABLE IF EXISTS nothing, `{other}`.copy2")
    r("DROP TABLE moved_back, does_not_exist", expect_error=True)  # MariaDB logs the part that succeeded
    # MariaDB's own forms, comments, executable comments, statements that change nothing
    r("ALTER ONLINE TABLE latin ADD COLUMN IF NOT EXISTS b int, ADD COLUMN IF NOT EXISTS o1 int",
      "ALTER TABLE IF EXISTS latin WAIT 5 DROP COLUMN IF EXISTS nothing, MODIFY IF EXISTS o1 bigint AFTER Z2",
      "ALTER TABLE latin NOWAIT ADD comp text /*M!100301 COMPRESSED*/ AFTER o1",
      "/* leading */ ALTER TABLE latin /*!50100 ADD COLUMN ex int */",
      "CREATE TABLE parted (a int, b int) /*!50100 PARTITION BY HASH (a) PARTITIONS 2 */",
      "ALTER TABLE parted ADD INDEX i (b), ALGORITHM=INPLACE, LOCK=NONE", "ALTER TABLE parted REMOVE PARTITIONING",
      "CREATE INDEX i2 ON parted (a)", "DROP INDEX i2 ON parted", "ALTER TABLE parted ENGINE=InnoDB, FORCE",
      "ALTER TABLE parted ALTER COLUMN a SET DEFAULT 5, ALTER b DROP DEFAULT, COMMENT 'x', AUTO_INCREMENT=9")
    r("CREATE VIEW v AS SELECT a FROM parted", "CREATE TRIGGER tr BEFORE INSERT ON parted FOR EACH ROW SET NEW.b = 1",
      "BEGIN", "INSERT INTO parted VALUES (1, 2)", "COMMIT", "CREATE TEMPORARY TABLE tmp1 (a int)",
      "ALTER TABLE tmp1 ADD b int", "DROP TEMPORARY TABLE tmp1", "DROP VIEW v", "DROP TRIGGER tr")
    # ANSI_QUOTES: "names" in double quotes
    r("SET SESSION sql_mode = 'ANSI_QUOTES'", 'CREATE TABLE "ansi" ("a b" int, "c" varchar(3))',
      'ALTER TABLE "ansi" RENAME COLUMN "a b" TO "ab"', "SET SESSION sql_mode = DEFAULT")

    queries = [q for q, _ in replay.results]
    assert "COMMIT" in queries  # (MariaDB marks a transaction's start with a GTID event, not a BEGIN query)
    assert any(q.startswith("DROP TABLE `moved_back`,`does_not_exist`") for q in queries)
    assert not any(res.failed for _, res in replay.results)
    assert replay.schemas[(main, "latin")].names[-1] == "ex"  # from inside the executable comment
    assert (other, "moved") not in replay.schemas and (main, "moved_back") not in replay.schemas


def test_a_statement_the_history_cannot_follow_stops_only_its_table(replay: Replay) -> None:
    main, _ = replay.dbs
    (result,) = replay.run("ALTER TABLE nopk ADD SYSTEM VERSIONING, ADD COLUMN v int")
    assert [(f.db, f.table) for f in result.failed] == [(main, "nopk")]
    assert result.failed[0].message == (
        f"Schema history of `{main}`.`nopk`: ADD SYSTEM VERSIONING adds hidden row_start/row_end columns, which "
        "this history does not model. Statement: ALTER TABLE nopk ADD SYSTEM VERSIONING, ADD COLUMN v int — "
        "Capture of this table stops here; re-snapshot the table (its schema is then read again with SHOW CREATE "
        "TABLE) to resume it.")
    (result,) = replay.run("ALTER TABLE latin ADD COLUMN after_failure int")  # the others go on
    assert not result.failed and replay.schemas[(main, "latin")].names[-1] == "after_failure"
