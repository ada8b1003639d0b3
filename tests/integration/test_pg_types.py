"""Real PostgreSQL 15: every column type through pgoutput, decoded and encoded, checked against the server.

Rows of edge values go through a logical slot (`pg_logical_slot_get_binary_changes`, pgoutput), our
decoder and RowCodec, under every encoding mode; each value is compared with what the server itself
computes for it in SQL (epoch arithmetic, scale(), encode(), to_json(), extract(), ...).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import psycopg
import pytest

from cdc.readers import pgfast
from cdc.readers import pgoutput as po
from cdc.readers.pgtypes import TYPE_CATALOG_SQL, EncodingModes, RowCodec, TypeInfo, java_double_str

SESSION = ("SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'; "
           "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C'")

DDL = """
CREATE TYPE mood AS ENUM ('happy', 'sad', 'very "sad"');
CREATE DOMAIN money2 AS numeric(10,2);
CREATE TABLE t (
  id int PRIMARY KEY,
  c_int2 int2, c_int4 int4, c_int8 int8, c_oid oid, c_bool bool, c_real real, c_double float8,
  c_num numeric, c_num122 numeric(12,2), c_money money,
  c_char char(5), c_varchar varchar(20), c_text text, c_name name, c_uuid uuid,
  c_json json, c_jsonb jsonb, c_xml xml, c_bytea bytea,
  c_date date, c_time time, c_time3 time(3), c_ts timestamp, c_ts3 timestamp(3),
  c_tstz timestamptz, c_tstz3 timestamptz(3), c_timetz timetz, c_interval interval,
  c_inet inet, c_cidr cidr, c_macaddr macaddr, c_point point, c_mood mood, c_dom money2,
  c_text_arr text[], c_int_arr int[], c_num_arr numeric[], c_int_arr2 int[][], c_mood_arr mood[],
  c_tstz_arr timestamptz[]
);
CREATE PUBLICATION pub FOR TABLE t;
"""

BIG = "9" * 600 + "." + "1" * 400

ROWS = [
    """(1, 1, 2, 3, 4, true, 1.1, 2.5, 12.345, 95497.56, '$1,234.56', 'ab', 'hello', 'text', 'nm',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5]}', '{"b": {"c": null}}', '<a>x</a>',
        '\\x00ff10', '2024-02-29', '10:15:30.123456', '10:15:30.123', '2018-06-20 15:13:16.945104',
        '2018-06-20 15:13:16.945', '2026-11-24 05:56:41.175094+00', '2026-11-24 05:56:41.17+00',
        '10:15:30.123+05:30', '1 year 2 mons 3 days 04:05:06.78', '192.168.0.1/24', '10.0.0.0/8',
        '08:00:2b:01:02:03', '(1.5,2)', 'happy', 12.5, '{"a b","c\\"d",NULL,"","back\\\\slash"}',
        '{1,2,NULL}', '{1.50,NaN,-2}', '{{1,2},{3,4}}', '{happy,"very \\"sad\\""}',
        '{"2026-01-01 00:00:00+00",NULL}')""",
    """(2, -32768, -2147483648, -9223372036854775808, 4294967295, false, 'NaN', 'Infinity', 'NaN',
        -0.01, '-$92,233,720,368,547,758.08', 'x', 'emoji 😀 é', '', 'n',
        '00000000-0000-0000-0000-000000000000',
        '[]', '"s"', '<r/>', '\\x', '0044-03-15 BC', '24:00:00', '00:00:00', '0044-03-15 12:00:00.5 BC',
        '10000-01-01 00:00:00', 'infinity', '-infinity', '23:30:00-01', '-1 days +02:03:00',
        '::1', '2001:db8::/32', '00:00:00:00:00:00', '(-1,-1)', 'very "sad"', -99999999.99, '{}', '{}',
        '{}', '{}', '{}', '{}')""",
    "(3" + ", NULL" * 40 + ")",
    """(4, 0, 0, 0, 0, true, '-Infinity', -1e-300, 'BIGNUM', 0, '$0.00', '     ', ' lead', 'tab\tnl\n',
        'z', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '1.5', '<x y="1"/>', '\\xdeadbeef',
        'infinity', '00:00:00.000001', '23:59:59.999', '1969-12-31 23:59:59.999999',
        '-infinity', '0044-03-15 12:00:00+00 BC', '10000-01-01 00:00:00+00', '00:00:00+00',
        '-00:00:01.5', '0.0.0.0', '0.0.0.0/0', 'ff:ff:ff:ff:ff:ff', '(0,0)', 'sad', 0, '{" "}', '{-1}',
        '{0.0000001}', '{{NULL}}', '{sad}', '{infinity}')""".replace("BIGNUM", BIG),
    """(5, 7, 7, 7, 7, false, 3.4028235e38, 1.7976931348623157e308, 0.0000001, 1.28, '$1,000.00',
        'é', 'x', 'y', 'y', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1', '2', '<a/>', '\\x01',
        '1969-12-31', '12:00:00', '12:00:00.5', '1970-01-01 00:00:00', '1969-12-31 23:59:59.9995',
        '1999-12-31 23:59:59.999999-08', '1999-12-31 23:59:59.9999+00', '00:00:00.5-12', '100:00:00',
        '127.0.0.1', '127.0.0.0/8', '01:02:03:04:05:06', '(1e10,-0.5)', 'happy', -0.01, '{NULL}', '{0}',
        '{100}', '{{1},{2}}', '{}', '{"1999-12-31 23:59:59.5-08"}')""",
]

MODES = [
    EncodingModes(),
    EncodingModes(decimal="precise", time_precision="adaptive_time_microseconds", binary="base64",
                  interval="string"),
    EncodingModes(decimal="double", time_precision="connect", binary="hex"),
    EncodingModes(decimal="precise", time_precision="isostring", binary="base64-url-safe"),
]

TS_POS_INF, TS_NEG_INF = 9223372036825200000, -9223372036832400000
DATE_POS_INF, DATE_NEG_INF = 2146033979, -2147472692


@pytest.fixture
def conn(pg_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute(SESSION)
        yield c


def capture(conn: psycopg.Connection[Any], slot: str, *options: str,
            raws: list[bytes] | None = None) -> list[po.Message]:
    """The slot's pgoutput messages, decoded; their bytes are appended to `raws` when given."""
    opts = ", ".join(f"'{o}'" for o in options)
    sql = f"SELECT data FROM pg_logical_slot_get_binary_changes('{slot}', NULL, NULL, {opts})"
    rows = conn.execute(sql).fetchall()
    out: list[po.Message] = []
    in_stream = False
    for (data,) in rows:
        if raws is not None:
            raws.append(bytes(data))
        msg = po.decode_message(data, 0, in_stream)
        if isinstance(msg, po.StreamStart):
            in_stream = True
        elif isinstance(msg, po.StreamStop):
            in_stream = False
        out.append(msg)
    return out


def load_types(conn: psycopg.Connection[Any], oids: set[int]) -> dict[int, TypeInfo]:
    rows = conn.execute(TYPE_CATALOG_SQL, (sorted(oids),)).fetchall()
    return {r[0]: TypeInfo(*r) for r in rows}


# ----------------------------------------------------------------------------------------- oracles

def iso_year(y: int) -> str:
    return f"{y:04d}" if 0 <= y <= 9999 else (f"+{y}" if y > 0 else f"-{-y:04d}")


def frac(us: int, width: int | None) -> str:
    if width is None:
        return ("." + f"{us:06d}".rstrip("0")) if us else ""
    return ("." + f"{us:06d}"[:width]) if width else ""


def b64(n: int) -> str:
    length = (n + (n < 0)).bit_length() // 8 + 1
    return base64.b64encode(n.to_bytes(length, "big", signed=True)).decode()


def fields_sql(col: str) -> str:
    # (astronomical year, month, day, hour, minute, whole second, µs) of a finite date/time value
    parts = (f"extract(year from {col})::int8 + (extract(year from {col}) < 0)::int",
             f"extract(month from {col})::int", f"extract(day from {col})::int",
             f"extract(hour from {col})::int", f"extract(minute from {col})::int",
             f"floor(extract(second from {col}))::int",
             f"((extract(second from {col}) * 1000000)::int8 %% 1000000)::int")
    return ", ".join(f"CASE WHEN isfinite({col}) THEN {p} END" for p in parts)


def epoch_us_sql(col: str) -> str:
    return f"CASE WHEN isfinite({col}) THEN (extract(epoch from {col}) * 1000000)::int8 END"


def server_oracle(conn: psycopg.Connection[Any], row_id: int) -> dict[str, Any]:
    """Everything the expectations are computed from, straight from the server, one query per column."""
    utc = "(c_tstz AT TIME ZONE 'UTC')"
    utc3 = "(c_tstz3 AT TIME ZONE 'UTC')"
    q: dict[str, str] = {
        "c_int2": "c_int2::int8", "c_int4": "c_int4::int8", "c_int8": "c_int8", "c_oid": "c_oid::int8",
        "c_bool": "c_bool", "c_real": "to_json(c_real)::text", "c_double": "to_json(c_double)::text",
        "c_num": "c_num::text, scale(trim_scale(c_num)), CASE WHEN c_num = 'NaN' THEN NULL ELSE "
                 "(trim_scale(c_num) * 10::numeric ^ scale(trim_scale(c_num)))::numeric(1000,0)::text END",
        "c_num122": "(c_num122 * 100)::int8", "c_money": "c_money::numeric::text",
        "c_char": "format('%%s', c_char)", "c_varchar": "format('%%s', c_varchar)", "c_text": "c_text",
        "c_name": "format('%%s', c_name)", "c_uuid": "format('%%s', c_uuid)",
        "c_json": "format('%%s', c_json)",
        "c_jsonb": "format('%%s', c_jsonb)", "c_xml": "format('%%s', c_xml)",
        "c_bytea": "replace(encode(c_bytea, 'base64'), E'\\n', ''), encode(c_bytea, 'hex')",
        "c_date": "c_date::text, CASE WHEN isfinite(c_date) THEN c_date - '1970-01-01'::date END, "
                  + fields_sql("c_date::timestamp"),
        "c_time": "(extract(epoch from c_time) * 1000000)::int8",
        "c_time3": "(extract(epoch from c_time3) * 1000000)::int8",
        "c_ts": f"c_ts::text, {epoch_us_sql('c_ts')}, {fields_sql('c_ts')}",
        "c_ts3": f"c_ts3::text, {epoch_us_sql('c_ts3')}, {fields_sql('c_ts3')}",
        "c_tstz": f"c_tstz::text, {fields_sql(utc)}",
        "c_tstz3": f"c_tstz3::text, {fields_sql(utc3)}",
        "c_timetz": "(extract(epoch from (c_timetz AT TIME ZONE 'UTC')::time) * 1000000)::int8",
        "c_interval": "extract(year from c_interval)::int, extract(month from c_interval)::int, "
                      "extract(day from c_interval)::int, extract(hour from c_interval)::int, "
                      "extract(minute from c_interval)::int, extract(second from c_interval)::text",
        "c_inet": "format('%%s', c_inet)", "c_cidr": "format('%%s', c_cidr)",
        "c_macaddr": "format('%%s', c_macaddr)", "c_point": "format('%%s', c_point)",
        "c_mood": "format('%%s', c_mood)", "c_dom": "(c_dom * 100)::int8",
        "c_text_arr": "to_json(c_text_arr)::text", "c_int_arr": "to_json(c_int_arr)::text",
        "c_num_arr": "to_json(c_num_arr::text[])::text, "
                     "(SELECT json_agg(json_build_array(scale(trim_scale(e)), "
                     "(trim_scale(e) * 10::numeric ^ scale(trim_scale(e)))::numeric(1000,0)::text)) "
                     " FROM unnest(c_num_arr) e WHERE e <> 'NaN')::text",
        "c_int_arr2": "to_json(c_int_arr2)::text", "c_mood_arr": "to_json(c_mood_arr)::text",
        "c_tstz_arr": "(SELECT json_agg(CASE WHEN isfinite(e) THEN to_char(e AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') ELSE e::text END) "
                      "FROM unnest(c_tstz_arr) e)::text",
    }
    out: dict[str, Any] = {}
    for col, expr in q.items():
        out[col] = conn.execute(f"SELECT {col} IS NULL, {expr} FROM t WHERE id = %s", (row_id,)).fetchone()
    return out


def iso_datetime(f: tuple[int, ...], width: int | None) -> str:
    y, mo, d, h, mi, s, us = f
    return f"{iso_year(y)}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac(us, width)}Z"


def iso_time(us: int) -> str:
    secs, f = divmod(us % 86_400_000_000, 1_000_000)
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}{frac(f, None)}Z"


IDENTITY = {"c_int2", "c_int4", "c_int8", "c_oid", "c_bool", "c_char", "c_varchar", "c_text", "c_name",
            "c_uuid", "c_json", "c_jsonb", "c_xml", "c_inet", "c_cidr", "c_macaddr", "c_point", "c_mood"}


def expected(col: str, o: dict[str, Any], m: EncodingModes) -> Any:
    """Debezium's encoding of the value, computed from the server's own numbers for it."""
    r = o[col]
    if r[0]:
        return None
    v = r[1:]
    if col in IDENTITY:
        return v[0]
    if col in ("c_real", "c_double"):
        return json.loads(v[0])
    if col == "c_num":
        text, trimmed_scale, unscaled = v
        if m.decimal == "string":
            return "NAN" if text == "NaN" else str(Decimal(text))
        if m.decimal == "double":
            return "NaN" if text == "NaN" else ("Infinity" if float(text) == float("inf") else float(text))
        return None if text == "NaN" else {"scale": trimmed_scale, "value": b64(int(unscaled))}
    if col in ("c_num122", "c_dom"):
        cents = v[0]
        if m.decimal == "precise":
            return b64(cents)
        return float(Decimal(cents).scaleb(-2)) if m.decimal == "double" else str(Decimal(cents).scaleb(-2))
    if col == "c_money":  # Debezium reads money through the JDBC driver's PGmoney: a double
        d = float(v[0])
        if m.decimal == "precise":
            return b64(int(Decimal(repr(d)).quantize(Decimal("0.01"), ROUND_HALF_UP).scaleb(2)))
        return d if m.decimal == "double" else java_double_str(d)
    if col == "c_bytea":
        std, hexed = v
        if m.binary == "hex":
            return hexed
        return std.replace("+", "-").replace("/", "_") if m.binary == "base64-url-safe" else std
    if col == "c_date":
        text, days, *fields = v
        if m.time_precision == "isostring":
            if days is None:
                return "+5877611-06-21Z" if text == "infinity" else "-5877611-06-22Z"
            return iso_datetime(tuple(fields), None)[:-10] + "Z"
        if days is None:
            return DATE_POS_INF if text == "infinity" else DATE_NEG_INF
        return days
    if col in ("c_time", "c_time3"):
        us = v[0]
        if m.time_precision == "isostring":
            return iso_time(us)
        micro = m.time_precision == "adaptive_time_microseconds" or (
            m.time_precision == "adaptive" and col == "c_time")
        return us if micro else us // 1000
    if col in ("c_ts", "c_ts3"):
        text, us, *fields = v
        if us is None:
            return text if m.time_precision == "isostring" else (
                TS_POS_INF if text == "infinity" else TS_NEG_INF)
        if m.time_precision == "isostring":
            return iso_datetime(tuple(fields), None)
        micro = m.time_precision in ("adaptive", "adaptive_time_microseconds") and col == "c_ts"
        return us if micro else us // 1000
    if col in ("c_tstz", "c_tstz3"):
        text, *fields = v
        if fields[0] is None:
            return text
        return iso_datetime(tuple(fields), 6 if col == "c_tstz" else 3)
    if col == "c_timetz":
        return iso_time(v[0])
    if col == "c_interval":
        y, mo, d, h, mi, sec = v
        sec_d = Decimal(sec)
        if m.interval == "string":
            s = "0" if sec_d == 0 else format(sec_d.normalize(), "f")
            return f"P{y}Y{mo}M{d}DT{h}H{mi}M{s}S"
        whole = int(sec_d)
        seconds = whole + int((sec_d - whole) * 1_000_000) / 1e6
        days_f = (y * 12 + mo) * (365.25 / 12.0) + d
        return int((((days_f * 24 + h) * 60 + mi) * 60 + seconds) * 1e6)
    if col in ("c_text_arr", "c_int_arr", "c_int_arr2", "c_mood_arr"):
        return json.loads(v[0])
    if col == "c_num_arr":
        texts = json.loads(v[0])
        if m.decimal == "string":
            return ["NAN" if t == "NaN" else str(Decimal(t)) for t in texts]
        if m.decimal == "double":
            return ["NaN" if t == "NaN" else float(t) for t in texts]
        exact = iter(json.loads(v[1]) if v[1] else [])
        out: list[Any] = []
        for t in texts:
            if t == "NaN":
                out.append(None)
            else:
                scale, unscaled = next(exact)
                out.append({"scale": scale, "value": b64(int(unscaled))})
        return out
    if col == "c_tstz_arr":
        return json.loads(v[0]) if v[0] is not None else []
    raise AssertionError(col)


# ----------------------------------------------------------------------------------------- tests

def mode_id(m: EncodingModes) -> str:
    return f"{m.decimal}-{m.time_precision}-{m.binary}-{m.interval}"


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_every_type_matches_the_server(conn: psycopg.Connection[Any], modes: EncodingModes) -> None:
    conn.execute(DDL)
    slot = "types_slot"
    conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    raws: list[bytes] = []
    try:
        for values in ROWS:
            conn.execute(f"INSERT INTO t VALUES {values}")
        messages = capture(conn, slot, "proto_version", "1", "publication_names", "pub", raws=raws)
    finally:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    rel = next(msg for msg in messages if isinstance(msg, po.Relation))
    inserts = [msg for msg in messages if isinstance(msg, po.Insert)]
    assert len(inserts) == len(ROWS)
    assert all(isinstance(msg, po.Begin | po.Commit | po.Relation | po.Type | po.Insert) for msg in messages)
    assert (rel.namespace, rel.name, rel.replica_identity) == ("public", "t", "d")
    assert [c.name for c in rel.columns if c.is_key] == ["id"]
    types = load_types(conn, {c.type_oid for c in rel.columns if c.type_oid >= 10000})
    assert {t.name for t in types.values()} >= {"mood", "money2", "_mood", "numeric"}
    codec = RowCodec(rel.columns, None, types, modes)
    checked = 0
    for ins in inserts:
        row = codec.decode(ins.new)
        assert codec.key(ins.new) == {"id": row["id"]}
        oracle = server_oracle(conn, row["id"])
        assert set(row) == set(oracle) | {"id"}
        for col, value in row.items():
            if col == "id":
                continue
            want = expected(col, oracle, modes)
            assert value == want, f"row {row['id']} {col}: got {value!r}, the server says {want!r}"
            checked += 1
    assert checked == 40 * len(ROWS)
    # The streaming hot path (C encoder where built) turns the same server bytes into the same JSON.
    cols = [(c.name, c.type_oid, c.type_modifier) for c in rel.columns]
    specs = {rel.oid: pgfast.row_spec(cols, [n for n, _, _ in cols], ["id"], types, modes)}
    frames = [b"w" + bytes(24) + raw for raw in raws if raw[:1] == b"I"]
    assert len(frames) == len(inserts)
    for frame, ins in zip(frames, inserts, strict=True):
        for encode in (pgfast.encode_change, pgfast.encode_change_py):
            enc = encode(frame, False, specs)
            assert enc is not None and enc[11] == 0
            assert enc[6] == orjson.dumps(codec.decode(ins.new))
            assert enc[8] == orjson.dumps(codec.key(ins.new))


def test_raw_bytes_captured_from_the_server(conn: psycopg.Connection[Any]) -> None:
    """Real pgoutput bytes: Relation with an enum Type message, Insert/Update/Delete old-key tuples."""
    conn.execute("CREATE TYPE color AS ENUM ('red', 'green'); "
                 "CREATE TABLE r (id int PRIMARY KEY, c color, big text, n int); "
                 "ALTER TABLE r ALTER COLUMN big SET STORAGE EXTERNAL; CREATE PUBLICATION pub FOR TABLE r")
    conn.execute("SELECT pg_create_logical_replication_slot('raw_slot', 'pgoutput')")
    try:
        conn.execute("INSERT INTO r VALUES (1, 'red', repeat('x', 10000), NULL)")
        conn.execute("UPDATE r SET n = 5 WHERE id = 1")  # big is TOASTed and unchanged
        conn.execute("UPDATE r SET id = 2 WHERE id = 1")  # key change: old key sent
        conn.execute("DELETE FROM r")
        conn.execute("TRUNCATE r")
        conn.execute("SELECT pg_logical_emit_message(true, 'cdc', 'hello')")
        rows = conn.execute("SELECT data FROM pg_logical_slot_get_binary_changes('raw_slot', NULL, NULL, "
                            "'proto_version', '1', 'publication_names', 'pub', 'messages', 'true')"
                            ).fetchall()
    finally:
        conn.execute("SELECT pg_drop_replication_slot('raw_slot')")
    msgs = [po.decode_message(bytes(r[0])) for r in rows]
    data = [m for m in msgs if not isinstance(m, po.Begin | po.Commit)]
    kinds = [type(m).__name__ for m in data]
    # TRUNCATE invalidates the relation cache: Type and Relation are sent again before it
    assert kinds == ["Type", "Relation", "Insert", "Update", "Update", "Delete",
                     "Type", "Relation", "Truncate", "LogicalMessage"]
    typ, rel, ins, upd1, upd2, dele, _, rel2, trunc, lmsg = data
    assert rel2 == rel
    assert isinstance(typ, po.Type) and typ.name == "color" and typ.namespace == "public"
    assert isinstance(rel, po.Relation) and rel.columns[0].type_oid == 23
    assert rel.columns[1].type_oid == typ.oid
    assert isinstance(ins, po.Insert) and ins.new == ("1", "red", "x" * 10000, None)
    assert isinstance(upd1, po.Update) and upd1.old is None
    assert upd1.new == ("1", "red", po.UNCHANGED_TOAST, "5")
    assert isinstance(upd2, po.Update) and upd2.old_kind == "K" and upd2.old == ("1", None, None, None)
    assert isinstance(dele, po.Delete) and dele.old_kind == "K" and dele.old == ("2", None, None, None)
    assert isinstance(trunc, po.Truncate) and trunc.rel_oids == (rel.oid,) and trunc.options == 0
    assert isinstance(lmsg, po.LogicalMessage) and (lmsg.transactional, lmsg.prefix, lmsg.content) == (
        True, "cdc", b"hello")
    begins = [m for m in msgs if isinstance(m, po.Begin)]
    commits = [m for m in msgs if isinstance(m, po.Commit)]
    assert len(begins) == len(commits) == 6
    now_us = conn.execute("SELECT (extract(epoch from now()) * 1000000)::int8").fetchone()[0]  # type: ignore[index]
    assert all(abs(b.commit_time_us - now_us) < 600_000_000 for b in begins)
    assert all(b.final_lsn == c.commit_lsn for b, c in zip(begins, commits, strict=True))


def test_protocol_v2_streams_a_large_transaction(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE big (id int PRIMARY KEY, pad text); CREATE PUBLICATION pub FOR TABLE big")
    conn.execute("SET logical_decoding_work_mem = '64kB'")
    conn.execute("SELECT pg_create_logical_replication_slot('stream_slot', 'pgoutput')")
    n = 5000
    try:
        conn.execute(f"INSERT INTO big SELECT g, repeat('p', 100) || g FROM generate_series(1, {n}) g")
        xid = conn.execute("SELECT xmin::text::int8 FROM big LIMIT 1").fetchone()[0]  # type: ignore[index]
        msgs = capture(conn, "stream_slot", "proto_version", "2", "streaming", "on",
                       "publication_names", "pub")
    finally:
        conn.execute("SELECT pg_drop_replication_slot('stream_slot')")
    kinds = [type(m) for m in msgs]
    assert po.StreamStart in kinds and po.StreamStop in kinds and po.Begin not in kinds
    assert kinds[-1] is po.StreamCommit
    starts = [m for m in msgs if isinstance(m, po.StreamStart)]
    assert starts[0].first_segment and not any(s.first_segment for s in starts[1:]) and len(starts) > 1
    assert all(s.xid == xid for s in starts)
    inserts = [m for m in msgs if isinstance(m, po.Insert)]
    assert len(inserts) == n and all(i.xid == xid for i in inserts)
    rel = next(m for m in msgs if isinstance(m, po.Relation))
    assert rel.xid == xid
    codec = RowCodec(rel.columns, None, {}, EncodingModes())
    rows = [codec.decode(i.new) for i in inserts]
    assert rows[0] == {"id": 1, "pad": "p" * 100 + "1"} and rows[-1]["id"] == n
    commit = msgs[-1]
    assert isinstance(commit, po.StreamCommit) and commit.xid == xid and commit.end_lsn > commit.commit_lsn

