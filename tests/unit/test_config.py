"""Connector configuration: shapes, defaults, every validation message, providers, secrets, filters."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from cdc.config import (
    MASK,
    FileStreamSinkConfig,
    PostgresSourceConfig,
    SecretsFilter,
    connector_classes,
    is_secret_property,
    load_connectors,
    masked,
    validate_connector,
)
from cdc.config.providers import Resolver, parse_properties
from cdc.errors import ConfigError

PG = "io.debezium.connector.postgresql.PostgresConnector"
PASSWORD = "Tr0ub4dor&3-erp"


def pg_config(**extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "connector.class": PG,
        "database.hostname": "10.0.0.5",
        "database.port": "5432",
        "database.user": "cdc",
        "database.password": PASSWORD,
        "database.dbname": "erp",
        "topic.prefix": "erp",
    }
    cfg.update(extra)
    return cfg


def sink_config(**extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"connector.class": "FileStreamSink", "file": "/tmp/out.jsonl",
                           "topics": "erp.m3.orders"}
    cfg.update(extra)
    return cfg


def write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, config: dict[str, Any], name: str = "erp-pg") -> list[str]:
    path = write(tmp_path, f"{name}.json", {"name": name, "config": config})
    with pytest.raises(ConfigError) as info:
        load_connectors([path])
    return info.value.problems


def one_problem(tmp_path: Path, config: dict[str, Any]) -> str:
    problems = problems_of(tmp_path, config)
    assert len(problems) == 1, problems
    return problems[0]


def load_pg(tmp_path: Path, **extra: Any) -> PostgresSourceConfig:
    path = write(tmp_path, "erp-pg.json", {"name": "erp-pg", "config": pg_config(**extra)})
    [cfg] = load_connectors([path])
    assert isinstance(cfg, PostgresSourceConfig)
    return cfg


# --- shapes and the happy path --------------------------------------------------------------------


def test_design_example_loads_with_debezium_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_PG_PASSWORD", PASSWORD)
    path = write(tmp_path, "erp-pg.json", """{"name": "erp-pg", "config": {
      "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
      "database.hostname": "10.0.0.5", "database.port": "5432", "database.user": "cdc",
      "database.password": "${env:ERP_PG_PASSWORD}", "database.dbname": "erp",
      "topic.prefix": "erp", "plugin.name": "pgoutput", "slot.name": "cdc_erp",
      "publication.name": "cdc_erp", "table.include.list": "m3\\\\..*", "snapshot.mode": "initial"}}""")
    [cfg] = load_connectors([path])
    assert isinstance(cfg, PostgresSourceConfig)
    assert cfg.name == "erp-pg"
    assert cfg.database_port == 5432
    assert cfg.database_password is not None and cfg.database_password.get_secret_value() == PASSWORD
    assert cfg.table_include_list == ("m3\\..*",)
    assert cfg.slot_name == "cdc_erp" and cfg.publication_name == "cdc_erp"


def test_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "min.json", {"name": "min", "config": {
        "connector.class": "PostgresConnector", "database.hostname": "db", "database.user": "u",
        "database.dbname": "erp", "topic.prefix": "erp"}})
    [cfg] = load_connectors([path])
    assert isinstance(cfg, PostgresSourceConfig)
    expected = {
        "tasks_max": 1, "database_port": 5432, "database_password": None, "database_sslmode": "prefer",
        "database_sslrootcert": None, "database_sslcert": None, "database_sslkey": None,
        "database_sslpassword": None, "database_tcp_keepalive": True, "plugin_name": "pgoutput",
        "slot_name": "debezium", "slot_drop_on_stop": False, "publication_name": "dbz_publication",
        "publication_autocreate_mode": "all_tables", "status_update_interval_ms": 10000,
        "schema_include_list": (), "table_include_list": (), "column_exclude_list": (),
        "snapshot_mode": "initial", "snapshot_fetch_size": 10240, "snapshot_max_threads": 1,
        "decimal_handling_mode": "string", "time_precision_mode": "adaptive", "binary_handling_mode": "bytes",
        "interval_handling_mode": "numeric", "tombstones_on_delete": True,
        "skipped_operations": frozenset("t"), "include_unknown_datatypes": False,
        "provide_transaction_metadata": False, "heartbeat_interval_ms": 10000, "max_batch_size": 2048,
        "slot_retained_wal_warning_bytes": 1 << 30,
        "max_queue_size": 8192, "poll_interval_ms": 500, "signal_data_collection": None,
        "errors_max_retries": -1, "retriable_restart_connector_wait_ms": 10000,
        "key_converter": "org.apache.kafka.connect.json.JsonConverter",
        "value_converter": "org.apache.kafka.connect.json.JsonConverter",
        "key_converter_schemas_enable": False, "value_converter_schemas_enable": False,
    }
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert cfg.connector_class == "PostgresConnector"


def test_flat_shape_and_list_shape(tmp_path: Path) -> None:
    flat = write(tmp_path, "flat.json", {"name": "a", **pg_config(**{"slot.name": "a"})})
    listed = write(tmp_path, "list.json", [
        {"name": "b", "config": pg_config(**{"slot.name": "b"})},
        {"name": "out", "config": sink_config()},
    ])
    got = load_connectors([flat, listed])
    assert [c.name for c in got] == ["a", "b", "out"]
    assert isinstance(got[2], FileStreamSinkConfig)


def test_rest_get_shape_with_tasks_and_type_is_accepted(tmp_path: Path) -> None:
    doc = {"name": "a", "config": pg_config(name="a"), "tasks": [], "type": "source"}
    path = write(tmp_path, "get.json", doc)
    assert [c.name for c in load_connectors([path])] == ["a"]


def test_numbers_and_booleans_as_strings_or_native(tmp_path: Path) -> None:
    as_strings = load_pg(tmp_path, **{"database.port": " 6543 ", "tombstones.on.delete": "FALSE",
                                      "status.update.interval.ms": "1000"})
    native = load_pg(tmp_path, **{"database.port": 6543, "tombstones.on.delete": False,
                                  "status.update.interval.ms": 1000})
    assert as_strings.database_port == native.database_port == 6543
    assert as_strings.tombstones_on_delete is native.tombstones_on_delete is False
    assert as_strings.status_update_interval_ms == native.status_update_interval_ms == 1000


def test_json_null_means_default(tmp_path: Path) -> None:
    assert load_pg(tmp_path, **{"slot.name": None}).slot_name == "debezium"


def test_connector_class_aliases_and_registry() -> None:
    classes = connector_classes()
    for name in (PG, "PostgresConnector", "Postgres"):
        assert classes[name] is PostgresSourceConfig
    for name in ("FileStreamSink", "FileStreamSinkConnector",
                 "org.apache.kafka.connect.file.FileStreamSinkConnector"):
        assert classes[name] is FileStreamSinkConfig


def test_validate_connector_for_one_flat_config() -> None:
    cfg = validate_connector({"name": "x", **pg_config()})
    assert isinstance(cfg, PostgresSourceConfig)
    with pytest.raises(ConfigError) as info:
        validate_connector({"name": "x", **pg_config(**{"snapshot.mode": "nope"})})
    assert info.value.problems[0].startswith("connector 'x': property 'snapshot.mode' = 'nope'")


# --- every problem, with the wording the user sees ------------------------------------------------


def test_snapshot_mode_message_names_file_connector_property_and_choices(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, pg_config(**{"snapshot.mode": "sometimes"}))
    assert problem == (f"{tmp_path / 'erp-pg.json'}: connector 'erp-pg': property 'snapshot.mode' = "
                       "'sometimes' is not one of: "
                       "initial, no_data, never, initial_only, when_needed, always")
    assert "erp-pg.json: connector 'erp-pg': property 'snapshot.mode'" in problem


@pytest.mark.parametrize(("prop", "bad", "choices"), [
    ("database.sslmode", "on", "disable, allow, prefer, require, verify-ca, verify-full"),
    ("publication.autocreate.mode", "some", "all_tables, disabled, filtered, no_tables"),
    ("decimal.handling.mode", "exact", "precise, double, string"),
    ("time.precision.mode", "fine", "adaptive, adaptive_time_microseconds, connect, isostring"),
    ("binary.handling.mode", "base32", "bytes, base64, base64-url-safe, hex"),
    ("interval.handling.mode", "iso", "numeric, string"),
    ("plugin.name", "test_decoding", "pgoutput"),
])
def test_every_enum_lists_what_is_accepted(tmp_path: Path, prop: str, bad: str, choices: str) -> None:
    problem = one_problem(tmp_path, pg_config(**{prop: bad}))
    assert problem.endswith(f"property '{prop}' = '{bad}' is not one of: {choices}")


@pytest.mark.parametrize(("prop", "value", "attr", "expected"), [
    ("snapshot.mode", "NEVER", "snapshot_mode", "no_data"),
    ("snapshot.mode", " When_Needed ", "snapshot_mode", "when_needed"),
    ("database.sslmode", "verify-full", "database_sslmode", "verify-full"),
    ("decimal.handling.mode", "precise", "decimal_handling_mode", "precise"),
    ("binary.handling.mode", "base64-url-safe", "binary_handling_mode", "base64-url-safe"),
    ("time.precision.mode", "isostring", "time_precision_mode", "isostring"),
    ("publication.autocreate.mode", "filtered", "publication_autocreate_mode", "filtered"),
])
def test_enum_values_are_case_insensitive_and_never_is_no_data(
        tmp_path: Path, prop: str, value: str, attr: str, expected: str) -> None:
    assert getattr(load_pg(tmp_path, **{prop: value}), attr) == expected


@pytest.mark.parametrize("plugin", ["decoderbufs", "wal2json"])
def test_other_decoders_say_only_pgoutput(tmp_path: Path, plugin: str) -> None:
    problem = one_problem(tmp_path, pg_config(**{"plugin.name": plugin}))
    assert problem.endswith(f"property 'plugin.name' = '{plugin}' is not supported by this bridge "
                            "(only pgoutput is supported)")


@pytest.mark.parametrize(("prop", "value"), [
    ("snapshot.mode", "custom"), ("snapshot.mode", "configuration_based"),
    ("time.precision.mode", "nanoseconds"),
])
def test_debezium_values_we_do_not_run_are_unsupported(tmp_path: Path, prop: str, value: str) -> None:
    assert f"property '{prop}' = '{value}' is not supported by this bridge" in one_problem(
        tmp_path, pg_config(**{prop: value}))


def test_unknown_property_suggests_the_closest(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, pg_config(**{"tabel.include.list": "m3\\..*"}))
    assert problem.endswith("unknown property 'tabel.include.list' (did you mean 'table.include.list'?)")
    assert one_problem(tmp_path, pg_config(**{"frobnicate": "1"})).endswith("unknown property 'frobnicate'")


@pytest.mark.parametrize("prop", ["heartbeat.action.query", "message.key.columns", "slot.stream.params",
                                  "transforms", "transforms.unwrap.type", "database.server.name"])
def test_recognised_but_unsupported_property_is_named(tmp_path: Path, prop: str) -> None:
    problem = one_problem(tmp_path, pg_config(**{prop: "x"}))
    assert f"property '{prop}' is not supported by this bridge" in problem


@pytest.mark.parametrize(("prop", "value", "tail"), [
    ("database.port", "54x2", "is not an integer"),
    ("database.port", "70000", "must be between 1 and 65535"),
    ("database.port", 5432.5, "is not an integer"),
    ("tombstones.on.delete", "yes", "is not a boolean (true or false)"),
    ("max.batch.size", "0", "must be at least 1"),
    ("errors.max.retries", "-2", "must be at least -1"),
    ("heartbeat.interval.ms", "-1", "must be at least 0"),
    ("slot.retained.wal.warning.bytes", "lots", "is not an integer"),
    ("slot.drop.on.stop", "true", "is not supported yet (only 'false')"),
    ("provide.transaction.metadata", "true", "is not supported yet"),
    ("signal.data.collection", "signals", "is not a schema.table name"),
    ("tasks.max", "4", "is not supported by this bridge: it runs one task per connector; set tasks.max=1"),
    ("snapshot.max.threads", "2", "is not supported by this bridge: snapshots run on one thread; "
                                  "set snapshot.max.threads=1"),
    ("slot.name", "CDC-erp", "is not a valid replication slot name (lower-case letters, digits and '_', "
                             "at most 63 characters)"),
    ("slot.name", "a" * 64, "is not a valid replication slot name"),
    ("topic.prefix", "erp/prod", "is not a valid topic name"),
    ("database.hostname", "  ", "must not be empty"),
    ("skipped.operations", "c,x", "has unknown operation 'x' (one of: c, u, d, t, r, or none)"),
    ("skipped.operations", "none,c", "combines 'none' with operations"),
    ("table.include.list", "m3\\..*,bad(", "has an invalid regular expression 'bad('"),
    ("key.converter", "io.confluent.connect.avro.AvroConverter",
     "is not supported by this bridge (only org.apache.kafka.connect.json.JsonConverter)"),
])
def test_bad_values(tmp_path: Path, prop: str, value: Any, tail: str) -> None:
    problem = one_problem(tmp_path, pg_config(**{prop: value}))
    assert f"property '{prop}' = " in problem and tail in problem, problem


@pytest.mark.parametrize("prop", ["key.converter.schemas.enable", "value.converter.schemas.enable"])
def test_schemas_enabled_is_refused_with_the_fix(tmp_path: Path, prop: str) -> None:
    problem = one_problem(tmp_path, pg_config(**{prop: "true"}))
    assert problem.endswith(f"property '{prop}' = 'true' is not supported by this bridge: schemas in the "
                            f"JSON are not supported; set {prop}=false")
    assert getattr(load_pg(tmp_path, **{prop: "false"}), prop.replace(".", "_")) is False


def test_missing_required_properties_are_all_listed(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"connector.class": PG})
    for prop in ("database.hostname", "database.user", "database.dbname", "topic.prefix"):
        assert any(p.endswith(f"required property '{prop}' is missing") for p in problems), problems
    assert len(problems) == 4


def test_missing_or_unknown_connector_class(tmp_path: Path) -> None:
    missing = one_problem(tmp_path, {"database.hostname": "x"})
    assert "required property 'connector.class' is missing (one of: " + PG in missing
    unknown = one_problem(tmp_path, {"connector.class": "io.debezium.connector.oracle.OracleConnector"})
    assert ("property 'connector.class' = 'io.debezium.connector.oracle.OracleConnector' is not one of:"
            in unknown)


@pytest.mark.parametrize("kind", ["schema", "table", "column"])
def test_include_and_exclude_of_one_kind_conflict(tmp_path: Path, kind: str) -> None:
    problem = one_problem(tmp_path, pg_config(**{f"{kind}.include.list": "a", f"{kind}.exclude.list": "b"}))
    assert f"properties '{kind}.include.list' and '{kind}.exclude.list' cannot both be set" in problem


def test_queue_must_exceed_batch(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, pg_config(**{"max.batch.size": "100", "max.queue.size": "100"}))
    assert problem.endswith("property 'max.queue.size' = 100 must be larger than 'max.batch.size' (100)")


def test_nested_json_value_is_refused(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, pg_config(**{"table.include.list": ["a", "b"]}))
    assert problem.endswith(
        "property 'table.include.list' must be a string, number or boolean, not a JSON array")


def test_every_problem_of_every_file_at_once(tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", {"name": "a", "config": pg_config(**{"snapshot.mode": "x", "tabel": "y"})})
    b = write(tmp_path, "b.json", '{"name": "b", "config": {')
    c = write(tmp_path, "c.json", {"name": "c", "config": sink_config(**{"topics.regex": "x.*"})})
    with pytest.raises(ConfigError) as info:
        load_connectors([a, b, c, tmp_path / "missing.json"])
    text = str(info.value)
    assert len(info.value.problems) == 5, info.value.problems
    assert "a.json: connector 'a': property 'snapshot.mode'" in text
    assert "a.json: connector 'a': unknown property 'tabel'" in text
    assert "b.json: invalid JSON at line 1" in text
    assert "c.json: connector 'c': properties 'topics' and 'topics.regex' are mutually exclusive" in text
    assert "missing.json: cannot be read: No such file or directory" in text


def test_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{"name": "x",\n  "config": {"a": 1,}\n}')
    with pytest.raises(ConfigError) as info:
        load_connectors([path])
    [problem] = info.value.problems
    assert re.fullmatch(re.escape(str(path)) + r": invalid JSON at line 2, column \d+: .+", problem), problem


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", {"name": "erp", "config": pg_config()})
    b = write(tmp_path, "b.json", [{"name": "erp", "config": sink_config()}])
    with pytest.raises(ConfigError) as info:
        load_connectors([a, b])
    [problem] = info.value.problems
    assert problem == f"{b}: connector 'erp': the name is already used by a connector in {a}"


@pytest.mark.parametrize(("doc", "fragment"), [
    ("[1]", "connector #1 must be a JSON object"),
    ('"x"', "must be a JSON object"),
    ('{"config": {"connector.class": "FileStreamSink"}}', "has no connector name"),
    ('{"name": "a", "config": []}', "'config' must be a JSON object, not an array"),
    ('{"name": "a", "config": {"name": "b"}}', "the name inside 'config' ('b') does not match"),
    ('{"name": "a", "config": {}, "topics": "x"}', "unexpected key 'topics' beside 'name' and 'config'"),
])
def test_wrong_shapes(tmp_path: Path, doc: str, fragment: str) -> None:
    path = write(tmp_path, "shape.json", doc)
    with pytest.raises(ConfigError) as info:
        load_connectors([path])
    assert any(fragment in p for p in info.value.problems), info.value.problems


# --- config providers -----------------------------------------------------------------------------


def test_env_provider_embedded_in_a_larger_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_HOST", "db7")
    monkeypatch.setenv("ERP_DOMAIN", "corp.example")
    cfg = load_pg(tmp_path, **{"database.hostname": "${env:ERP_HOST}.${env:ERP_DOMAIN}"})
    assert cfg.database_hostname == "db7.corp.example"


def test_missing_env_var_names_property_and_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERP_PG_PASSWORD", raising=False)
    monkeypatch.delenv("ERP_HOST", raising=False)
    problems = problems_of(tmp_path, pg_config(**{"database.password": "${env:ERP_PG_PASSWORD}",
                                                  "database.hostname": "${env:ERP_HOST}"}))
    assert sorted(p.split("erp-pg': ", 1)[1] for p in problems) == [
        "property 'database.hostname': ${env:ERP_HOST} is not set",
        "property 'database.password': ${env:ERP_PG_PASSWORD} is not set",
    ]  # and not also "required property 'database.hostname' is missing"


def test_file_provider_reads_java_properties(tmp_path: Path) -> None:
    secrets = tmp_path / "pg.properties"
    secrets.write_text("# ERP credentials\n! another comment\nuser = cdc_reader\npassword: " + PASSWORD
                       + "\nhost   db9\n", encoding="utf-8")
    cfg = load_pg(tmp_path, **{"database.user": f"${{file:{secrets}:user}}",
                               "database.password": f"${{file:{secrets}:password}}",
                               "database.hostname": f"${{file:{secrets}:host}}"})
    assert (cfg.database_user, cfg.database_hostname) == ("cdc_reader", "db9")
    assert cfg.database_password is not None and cfg.database_password.get_secret_value() == PASSWORD


def test_file_provider_problems(tmp_path: Path) -> None:
    props = tmp_path / "pg.properties"
    props.write_text("password=" + PASSWORD + "\n", encoding="utf-8")
    missing_file = tmp_path / "nope.properties"
    problems = problems_of(tmp_path, pg_config(**{
        "database.password": f"${{file:{props}:passwd}}",
        "database.user": f"${{file:{missing_file}:user}}",
        "database.hostname": "${vault:secret/erp:host}",
    }))
    text = "\n".join(problems)
    assert (f"property 'database.password': ${{file:{props}:passwd}} names key 'passwd', "
            f"which is not in {props}") in text
    assert (f"property 'database.user': ${{file:{missing_file}:user}} cannot be read: "
            "No such file or directory") in text
    assert ("property 'database.hostname': ${vault:secret/erp:host} uses unknown config provider 'vault'"
            in text)
    assert PASSWORD not in text


def test_parse_properties_like_java() -> None:
    text = ("# c\n  ! c\n\na=1\nb : two words \nc\tthree\nd=line\\\n    continued\ne=tab\\tand\\u0041\n"
            "f\\=key=v\ng\n  h = = x\n")
    assert parse_properties(text) == {"a": "1", "b": "two words ", "c": "three", "d": "linecontinued",
                                      "e": "tab\tandA", "f=key": "v", "g": "", "h": "= x"}


def test_resolver_uses_given_environment() -> None:
    resolver = Resolver({"A": "1"})
    resolved, problems = resolver.resolve_config({"x": "${env:A}${env:A}", "y": 3, "z": "${env:B}"})
    assert resolved == {"x": "11", "y": 3}
    assert problems == ["property 'z': ${env:B} is not set"]


# --- secrets --------------------------------------------------------------------------------------


def test_secret_property_names() -> None:
    for name in ("database.password", "database.sslpassword", "ssl.key.password", "sasl.jaas.config",
                 "client.secret", "api.key", "hubspot.apikey", "oauth.token", "gcp.credentials",
                 "ssl.keystore.key"):
        assert is_secret_property(name), name
    for name in ("database.user", "key.converter", "message.key.columns", "database.sslkey", "topics"):
        assert not is_secret_property(name), name


def test_masked_flat_and_rest_shapes() -> None:
    flat = {"database.password": PASSWORD, "database.user": "cdc", "api.key": 123, "client.secret": ""}
    assert masked(flat) == {"database.password": MASK, "database.user": "cdc", "api.key": MASK,
                            "client.secret": ""}
    rest = {"name": "x", "config": {"database.password": "${env:ERP_PG_PASSWORD}", "token": "abc${env:X}"}}
    assert masked(rest) == {"name": "x", "config": {"database.password": "${env:ERP_PG_PASSWORD}",
                                                    "token": MASK}}


def test_secrets_never_in_repr_dump_or_str(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path, **{"database.sslpassword": "keypass-9876"})
    for text in (repr(cfg), str(cfg), str(cfg.model_dump()), json.dumps(cfg.model_dump(mode="json")),
                 str(cfg.masked_dump())):
        assert PASSWORD not in text and "keypass-9876" not in text
    dump = cfg.masked_dump()
    assert dump["database.password"] == MASK and dump["database.sslpassword"] == MASK
    assert dump["database.user"] == "cdc" and dump["skipped.operations"] == "t"
    assert dump["decimal.handling.mode"] == "string"


def test_secret_values_never_in_error_messages(tmp_path: Path) -> None:
    # A secret that fails validation, and the same secret pasted into an unknown property.
    problems = problems_of(tmp_path, pg_config(**{"database.password": {"nested": PASSWORD},
                                                  "database.passwrod": PASSWORD,
                                                  "api.key": PASSWORD}))
    text = "\n".join(problems)
    assert PASSWORD not in text
    assert "unknown property 'database.passwrod' (did you mean 'database.password'?)" in text


def test_secret_in_a_bad_non_secret_value_is_redacted(tmp_path: Path) -> None:
    # The password is registered as it loads; a value quoting it elsewhere is redacted in the error.
    problem = one_problem(tmp_path, pg_config(**{"snapshot.mode": f"x{PASSWORD}"}))
    assert PASSWORD not in problem and f"'x{MASK}'" in problem


def test_secrets_filter_redacts_log_records(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_PG_PASSWORD", "env-s3cret-value")
    cfg = load_pg(tmp_path, **{"database.password": "${env:ERP_PG_PASSWORD}"})
    caplog.handler.addFilter(SecretsFilter())
    log = logging.getLogger("cdc.test")
    with caplog.at_level(logging.INFO):
        log.info("connecting with %s", cfg.conninfo())
        log.info("password is env-s3cret-value")
        log.info("args %r", {"pw": "env-s3cret-value"})
        try:
            raise RuntimeError("driver said: password env-s3cret-value rejected")
        except RuntimeError:
            log.exception("failed")
    assert "env-s3cret-value" not in caplog.text
    assert caplog.text.count(MASK) >= 4
    assert all("env-s3cret-value" not in r.getMessage() for r in caplog.records)


def test_secrets_filter_install_covers_handlers() -> None:
    logger = logging.getLogger("cdc.test.install")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        flt = SecretsFilter.install(logger)
        assert flt in logger.filters and flt in handler.filters
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(flt)


def test_short_values_are_not_registered() -> None:
    SecretsFilter.register("ab")
    assert SecretsFilter.redact("abc ab") == "abc ab"


# --- filters and questions the reader asks --------------------------------------------------------


def test_table_include_list_full_match_with_escaped_dot(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path, **{"table.include.list": "m3\\..*, public.orders"})
    assert cfg.table_included("m3", "ooline")
    assert cfg.table_included("M3", "OOLINE")  # Debezium matches case-insensitively
    assert cfg.table_included("public", "orders")
    assert not cfg.table_included("m3x", "ooline")  # the escaped dot is a dot
    assert not cfg.table_included("public", "orders_archive")  # anchored: whole identifier
    assert not cfg.table_included("xpublic", "orders")


def test_unescaped_dot_is_any_character(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path, **{"table.include.list": "m3..*"})
    assert cfg.table_included("m3x", "ooline")


def test_table_exclude_and_schema_lists(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path, **{"table.exclude.list": "m3\\.tmp_.*", "schema.include.list": "m3,sales"})
    assert cfg.table_included("m3", "orders")
    assert not cfg.table_included("m3", "tmp_load")
    assert not cfg.table_included("public", "orders")
    cfg = load_pg(tmp_path, **{"schema.exclude.list": "audit.*"})
    assert not cfg.table_included("audit_2024", "log")
    assert cfg.table_included("m3", "log")


def test_system_tables_are_never_included(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path)
    assert cfg.table_included("public", "orders")
    for schema, table in (("pg_catalog", "pg_class"), ("information_schema", "tables"),
                          ("pg_temp_3", "t"), ("public", "spatial_ref_sys")):
        assert not cfg.table_included(schema, table)


def test_regex_list_with_escaped_comma(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path, **{"table.include.list": "m3\\.t{1\\,2}"})
    assert cfg.table_include_list == ("m3\\.t{1,2}",)
    assert cfg.table_included("m3", "tt") and not cfg.table_included("m3", "ttt")
    assert cfg.masked_dump()["table.include.list"] == "m3\\.t{1\\,2}"


def test_column_filters(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path, **{"column.exclude.list": "m3\\.customers\\.(ssn|card_.*)"})
    assert cfg.column_included("m3", "customers", "name")
    assert not cfg.column_included("m3", "customers", "ssn")
    assert not cfg.column_included("m3", "customers", "card_no")
    assert cfg.column_included("m3", "orders", "ssn")
    cfg = load_pg(tmp_path, **{"column.include.list": "m3\\.orders\\.(id|total)"})
    assert cfg.column_included("m3", "orders", "id") and not cfg.column_included("m3", "orders", "note")


def test_skipped_operations(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path)
    assert cfg.skipped("t") and not cfg.skipped("c")
    cfg = load_pg(tmp_path, **{"skipped.operations": "none"})
    assert not any(cfg.skipped(op) for op in "cudtr")
    assert cfg.masked_dump()["skipped.operations"] == "none"
    cfg = load_pg(tmp_path, **{"skipped.operations": " u , d "})
    assert cfg.skipped("u") and cfg.skipped("d") and not cfg.skipped("t")


def test_conninfo(tmp_path: Path) -> None:
    from psycopg.conninfo import conninfo_to_dict

    cfg = load_pg(tmp_path, **{"database.password": "it's a \\ pw", "database.sslmode": "require"})
    parsed = conninfo_to_dict(cfg.conninfo())
    assert parsed == {
        "host": "10.0.0.5", "port": "5432", "dbname": "erp", "user": "cdc", "password": "it's a \\ pw",
        "sslmode": "require", "keepalives": "1", "application_name": "cdc-bridge",
        "options": "-c DateStyle=ISO,MDY -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=1 "
                   "-c bytea_output=hex",
    }
    assert conninfo_to_dict(cfg.conninfo(replication=True))["replication"] == "database"


def test_conninfo_without_password(tmp_path: Path) -> None:
    cfg = load_pg(tmp_path, **{"database.password": None})
    assert "password" not in cfg.conninfo()


# --- FileStreamSink -------------------------------------------------------------------------------


def load_sink(tmp_path: Path, **extra: Any) -> FileStreamSinkConfig:
    path = write(tmp_path, "out.json", {"name": "out", "config": sink_config(**extra)})
    [cfg] = load_connectors([path])
    assert isinstance(cfg, FileStreamSinkConfig)
    return cfg


def test_sink_topics_list(tmp_path: Path) -> None:
    cfg = load_sink(tmp_path, topics="erp.m3.orders, erp.m3.lines")
    assert cfg.topics == ("erp.m3.orders", "erp.m3.lines")
    pattern = cfg.topic_pattern()
    assert pattern.fullmatch("erp.m3.orders") and pattern.fullmatch("erp.m3.lines")
    assert not pattern.fullmatch("erp.m3xorders") and not pattern.fullmatch("erp.m3.orders2")
    assert (cfg.errors_tolerance, cfg.errors_deadletterqueue_topic_name, cfg.tasks_max) == ("none", None, 1)


def test_sink_topics_regex_is_whole_name(tmp_path: Path) -> None:
    cfg = load_sink(tmp_path, topics=None, **{"topics.regex": "erp\\.m3\\..*"})
    assert cfg.topic_pattern().fullmatch("erp.m3.orders")
    assert not cfg.topic_pattern().fullmatch("x.erp.m3.orders")


def test_sink_relative_file_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_sink(tmp_path, file="out/events.jsonl")
    assert cfg.file == tmp_path / "out" / "events.jsonl"
    assert cfg.masked_dump()["file"] == str(tmp_path / "out" / "events.jsonl")


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"topics": None}, "one of the properties 'topics' or 'topics.regex' must be set"),
    ({"topics.regex": "erp.*"}, "properties 'topics' and 'topics.regex' are mutually exclusive"),
    ({"file": None}, "required property 'file' is missing"),
    ({"topics": "erp/orders"}, "property 'topics' = 'erp/orders' is not a valid topic name"),
    ({"topics": None, "topics.regex": "erp(("}, "property 'topics.regex' = 'erp((' is not a valid regular"),
    ({"errors.tolerance": "some"}, "property 'errors.tolerance' = 'some' is not one of: none, all"),
    ({"errors.deadletterqueue.topic.name": "erp.m3.orders"},
     "property 'errors.deadletterqueue.topic.name' = 'erp.m3.orders' is one of the topics this sink "
     "consumes"),
    ({"batch.size": "100"}, "unknown property 'batch.size'"),
    ({"tasks.max": "2"}, "property 'tasks.max' = '2' is not supported by this bridge"),
    ({"errors.log.enable": "true"}, "property 'errors.log.enable' is not supported by this bridge"),
])
def test_sink_problems(tmp_path: Path, extra: dict[str, Any], fragment: str) -> None:
    path = write(tmp_path, "out.json", {"name": "out", "config": sink_config(**extra)})
    with pytest.raises(ConfigError) as info:
        load_connectors([path])
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_sink_error_settings(tmp_path: Path) -> None:
    cfg = load_sink(tmp_path, **{"errors.tolerance": "none"})
    assert (cfg.errors_tolerance, cfg.errors_deadletterqueue_topic_name) == ("none", None)
    # Accepted at their defaults only until the dead-letter store exists: never silently ignored.
    with pytest.raises(ConfigError) as info:
        load_sink(tmp_path, **{"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq-out"})
    assert len(info.value.problems) == 2
    assert all("is not supported yet" in p for p in info.value.problems)
