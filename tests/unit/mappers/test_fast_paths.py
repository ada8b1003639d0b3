"""The shortcuts the mapper takes for speed give exactly the values, errors and bytes of the general code."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from mappers import cloudevents
from mappers import runtime as rt
from mappers.cloudevents import EventWriter, cloudevent, commit_time, event_id, source_position, source_uri
from mappers.compiler import compile_mapping
from mappers.sqltypes import Catalog
from mappers.values import EvalError, decode_decimal_string, decode_timestamptz

PG = Catalog.from_ddl("""CREATE TABLE m3.c (cono smallint, cuno char(10), name varchar(36), stat char(2),
    credit numeric(15,2), rgdt integer, tz timestamptz, PRIMARY KEY (cono, cuno))""", "postgres")
ROW = {"cono": 100, "cuno": "C1        ", "name": "Nordic", "stat": "20", "credit": "1500.50", "rgdt": 20240131,
       "tz": "2024-01-31T11:20:00.000000Z"}


def one(expr: str, **row: Any) -> Any:
    return compile_mapping(f"SELECT {expr} AS v FROM m3.c", PG).project({**ROW, **row}, None)[0]


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The value, or the type and message of the error."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        return type(e), str(e)


def test_memoized_keeps_only_truthy_results_of_the_kept_class() -> None:
    calls: list[Any] = []

    def parse(x: Any) -> date | None:
        calls.append(x)
        if x == 0:
            raise EvalError("bad")
        return None if x == 1 else date(2024, 1, int(x) % 28 + 1)

    memo, compute = rt.memoized(parse, int, size=2)
    assert compute(5) == date(2024, 1, 6) and memo == {5: date(2024, 1, 6)}
    assert compute(5.0) == date(2024, 1, 6) and 5.0 in memo and memo[5] is not None  # computed, not kept
    assert compute(1) is None and 1 not in memo
    with pytest.raises(EvalError):
        compute(0)
    assert 0 not in memo
    compute(6)
    compute(7)  # full: emptied, then kept
    assert memo == {7: date(2024, 1, 8)}
    assert calls == [5, 5.0, 1, 0, 6, 7]


def test_to_date_of_an_integer_is_remembered_by_the_integer() -> None:
    m = compile_mapping("SELECT TO_DATE(NULLIF(rgdt, 0)::text, 'YYYYMMDD') AS d FROM m3.c", PG)
    assert ".__class__ is int" in m.python
    for _ in range(2):  # the second time from the memo
        assert m.project({**ROW, "rgdt": 20240131}, None) == (date(2024, 1, 31),)
        assert m.project({**ROW, "rgdt": 0}, None) == (None,)
        with pytest.raises(EvalError, match=r'invalid value "20240131\.0"'):  # a float equal to a remembered int
            m.project({**ROW, "rgdt": 20240131.0}, None)
        with pytest.raises(EvalError, match="out of range"):
            m.project({**ROW, "rgdt": 20240230}, None)
    text = compile_mapping("SELECT TO_DATE(TRIM(cuno), 'YYYYMMDD') AS d FROM m3.c", PG)
    for _ in range(2):
        assert text.project({**ROW, "cuno": "20240229  "}, None) == (date(2024, 2, 29),)


@pytest.mark.parametrize("value", ["1500.50", "-0.00", "1E+3", "NaN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY",
                                   "abc", "", 7, 2.5, True, None])
def test_inline_decimal_decoding_equals_the_decoder(value: Any) -> None:
    got = outcome(one, "credit", credit=value)
    expected = None if value is None else outcome(decode_decimal_string, value)
    assert repr(got) == repr(expected)


@pytest.mark.parametrize("value", ["2024-01-31T11:20:00.123456Z", "2024-01-31T11:20:00Z", "2024-01-31T13:20:00+02:00",
                                   "2024-01-31T11:20:00", "garbage", "", 1706700000123, None])
def test_inline_timestamptz_decoding_equals_the_decoder(value: Any) -> None:
    got = outcome(one, "tz", tz=value)
    expected = None if value is None else outcome(decode_timestamptz, value)
    assert repr(got) == repr(expected)


def test_trimming_a_char_strips_once() -> None:
    assert one("TRIM(cuno)", cuno="  C1      ") == "C1"
    assert one("TRIM(LEADING FROM cuno)", cuno="  C1      ") == "C1"
    assert one("TRIM(TRAILING FROM cuno)", cuno="  C1      ") == "  C1"
    assert one("TRIM(BOTH 'C' FROM cuno)", cuno="C1C       ") == "1"  # the padding goes first
    assert one("TRIM(cuno)", cuno=None) is None


def test_decimal_products_have_no_negative_zero() -> None:
    assert str(one("credit * -1", credit="0.00")) == "0.00"
    assert str(one("credit * 1.25", credit="-3.00")) == "-3.7500"


@pytest.mark.parametrize("where", ["cono = 100 AND TO_DATE(rgdt::text, 'YYYYMMDD') > '2000-01-01'",
                                   "(stat = '20' AND (name <> 'x' AND credit > 5)) AND 1 = 1"])
def test_a_conjunction_in_where_is_three_valued_and(where: str) -> None:
    """A row is a member exactly when the AND is TRUE, and a conjunct is evaluated exactly when the
    three-valued AND evaluates it (so the same rows raise)."""
    m = compile_mapping(f"SELECT TRIM(cuno) AS id FROM m3.c WHERE {where}", PG)
    as_value = compile_mapping(f"SELECT ({where}) AS v FROM m3.c", PG)
    rows = [ROW, {**ROW, "cono": None}, {**ROW, "cono": 200}, {**ROW, "rgdt": 0}, {**ROW, "cono": 200, "rgdt": 0},
            {**ROW, "cono": None, "rgdt": 0}, {**ROW, "stat": None}, {**ROW, "name": None, "credit": None},
            {**ROW, "stat": "10", "credit": "abc"}, {**ROW, "credit": "abc"}]
    for row in rows:
        value = outcome(as_value.project, row, None)
        member = outcome(m.evaluate, row, None)
        if isinstance(value, tuple) and value and isinstance(value[0], type) and issubclass(value[0], Exception):
            assert member == value, row
        else:
            assert (member is not None) == (value[0] is True), row


SOURCE: dict[str, Any] = {"name": "erp", "schema": "m3", "table": "c", "lsn": 4242, "ts_us": 1706700000123456}


C_WRITER = pytest.param(True, marks=pytest.mark.skipif(cloudevents._typed_write is None,
                                                      reason="C extension not built: the pure-Python writer is in use"))


@pytest.mark.parametrize("native", [C_WRITER, False])
@pytest.mark.parametrize("dataschema", [None, "urn:erp-cdc:entity:customer:v1"])
def test_typed_writer_equals_write(dataschema: str | None, native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `typed` (its C fast path or the pure-Python one) or `event`, first event or not, the same id,
    time and bytes as the reference `cloudevent`: long and non-ASCII subjects, MySQL positions, odd LSNs."""
    if not native:
        monkeypatch.setattr(cloudevents, "_typed_write", None)
    typed_w = EventWriter("", "f00d", dataschema)
    plain_w = EventWriter("", "f00d", dataschema)
    write_up = typed_w.typed("crm.upserted", False)
    write_del = typed_w.typed("crm.deleted", True)
    sources = [SOURCE, {**SOURCE, "lsn": 4243}, {**SOURCE, "lsn": 4244, "ts_us": SOURCE["ts_us"] + 1},
               {**SOURCE, "lsn": 4245}, {k: v for k, v in SOURCE.items() if k != "ts_us"} | {"ts_ms": 1706700001000},
               {k: v for k, v in SOURCE.items() if k != "lsn"} | {"file": "bin.000001", "pos": 7, "row": 2},
               SOURCE, {**SOURCE, "lsn": 2 ** 64}, {**SOURCE, "lsn": -1}, {**SOURCE, "lsn": "4246"},
               {**SOURCE, "ts_us": float(SOURCE["ts_us"])}, SOURCE, SOURCE, SOURCE]
    subjects = ["C{n}", "C{n}", "C{n}", "C{n}", "C{n}", "C{n}", "C{n}", "C{n}", "C{n}", "C{n}", "C{n}",
                "ä€🙂 {n}", "x" * 300 + "{n}", "{n}" + "y" * 57]
    for n, (source, subject) in enumerate(zip(sources, subjects, strict=True)):
        subject = subject.format(n=n)
        sj = orjson.dumps(subject)
        data = {"id": subject, "at": datetime(2024, 1, 31, tzinfo=UTC)}
        dj = orjson.dumps(data, option=orjson.OPT_UTC_Z)
        for deleted, typed in ((False, write_up), (True, write_del)):
            type_ = "crm.deleted" if deleted else "crm.upserted"
            got = typed(source, "u", subject, sj, dj)
            assert got == plain_w.event(source, "u", subject, sj, type_, deleted, dj)
            id_ = event_id("erp", source_position(source), "u", subject, type_, "f00d")
            assert got == (id_, commit_time(source), cloudevent(id_, source_uri(source), type_, subject,
                                                                commit_time(source), data,
                                                                None if deleted else dataschema))
    with pytest.raises(UnicodeEncodeError):  # the pure-Python path's error, from either path
        write_up(SOURCE, "u", "bad \ud800", b'"bad"', b"{}")


def test_commit_times_in_other_zones_are_normalised() -> None:
    # the non-UTC branch of the inline decoder: converted as the decoder converts
    t = one("tz", tz="2024-01-31T13:20:00+02:00")
    assert t == datetime(2024, 1, 31, 11, 20, tzinfo=timezone(timedelta(0))) and t.tzinfo is UTC
    assert one("credit", credit="1E+3") == Decimal("1E+3")
