"""MySQL and MariaDB connector configuration: defaults, every value set, every refusal and its wording,
filters, secrets, providers and the PyMySQL connection settings."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import pytest

from cdc.config import (
    MASK,
    BinlogSourceConfig,
    MariaDbSourceConfig,
    MySqlSourceConfig,
    connector_classes,
    load_connectors,
    validate_connector,
)
from cdc.config.registry import canonical_classes
from cdc.errors import ConfigError

MYSQL = "io.debezium.connector.mysql.MySqlConnector"
MARIADB = "io.debezium.connector.mariadb.MariaDbConnector"
PASSWORD = "Erp-My-S3cret#42"

FLAVORS = pytest.mark.parametrize("cls", [MYSQL, MARIADB])


def my_config(cls: str = MYSQL, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "connector.class": cls,
        "database.hostname": "10.0.0.7",
        "database.user": "cdc",
        "database.password": PASSWORD,
        "database.server.id": "184054",
        "topic.prefix": "erp",
    }
    cfg.update(extra)
    return cfg


def write(tmp_path: Path, doc: Any, name: str = "erp-my.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, config: dict[str, Any]) -> list[str]:
    path = write(tmp_path, {"name": "erp-my", "config": config})
    with pytest.raises(ConfigError) as info:
        load_connectors([path])
    return info.value.problems


def one_problem(tmp_path: Path, config: dict[str, Any]) -> str:
    problems = problems_of(tmp_path, config)
    assert len(problems) == 1, problems
    return problems[0]


def load_my(tmp_path: Path, cls: str = MYSQL, **extra: Any) -> BinlogSourceConfig:
    path = write(tmp_path, {"name": "erp-my", "config": my_config(cls, **extra)})
    [cfg] = load_connectors([path])
    assert isinstance(cfg, BinlogSourceConfig)
    return cfg


# --- classes, flavors and defaults ----------------------------------------------------------------


def test_connector_classes_and_aliases() -> None:
    classes = connector_classes()
    for name in (MYSQL, "MySqlConnector", "MySql"):
        assert classes[name] is MySqlSourceConfig
    for name in (MARIADB, "MariaDbConnector", "MariaDb"):
        assert classes[name] is MariaDbSourceConfig
    assert MYSQL in canonical_classes() and MARIADB in canonical_classes()
    assert (MySqlSourceConfig.flavor, MySqlSourceConfig.source_connector) == ("mysql", "mysql")
    assert (MariaDbSourceConfig.flavor, MariaDbSourceConfig.source_connector) == ("mariadb", "mariadb")
    assert MySqlSourceConfig.KIND == MariaDbSourceConfig.KIND == "source"


COMMON_DEFAULTS: dict[str, Any] = {
    "tasks_max": 1, "database_port": 3306, "database_password": None, "connect_timeout_ms": 30000,
    "connect_keep_alive": True, "connect_keep_alive_interval_ms": 60000,
    "database_include_list": (), "database_exclude_list": (), "table_include_list": (), "table_exclude_list": (),
    "column_include_list": (), "column_exclude_list": (), "gtid_source_includes": (), "gtid_source_excludes": (),
    "gtid_source_filter_dml_events": True, "snapshot_mode": "initial", "snapshot_locking_mode": "minimal",
    "snapshot_lock_timeout_ms": 10000, "snapshot_fetch_size": 10240, "snapshot_max_threads": 1,
    "decimal_handling_mode": "string", "time_precision_mode": "adaptive_time_microseconds",
    "binary_handling_mode": "bytes", "bigint_unsigned_handling_mode": "long", "enable_time_adjuster": True,
    "tombstones_on_delete": True, "skipped_operations": frozenset("t"), "include_schema_changes": False,
    "include_query": False, "provide_transaction_metadata": False,
    "event_deserialization_failure_handling_mode": "fail", "event_processing_failure_handling_mode": "fail",
    "inconsistent_schema_handling_mode": "fail", "heartbeat_interval_ms": 0, "max_batch_size": 2048,
    "max_queue_size": 8192, "poll_interval_ms": 500, "signal_data_collection": None, "errors_max_retries": -1,
    "retriable_restart_connector_wait_ms": 10000,
    "key_converter": "org.apache.kafka.connect.json.JsonConverter",
    "value_converter": "org.apache.kafka.connect.json.JsonConverter",
    "key_converter_schemas_enable": False, "value_converter_schemas_enable": False,
}


@pytest.mark.parametrize(("cls", "model", "ssl_mode"), [
    ("MySqlConnector", MySqlSourceConfig, "preferred"),
    ("MariaDbConnector", MariaDbSourceConfig, "disable"),
])
def test_defaults(tmp_path: Path, cls: str, model: type[BinlogSourceConfig], ssl_mode: str) -> None:
    path = write(tmp_path, {"name": "min", "config": {
        "connector.class": cls, "database.hostname": "db", "database.user": "u", "database.server.id": 7,
        "topic.prefix": "erp"}})
    [cfg] = load_connectors([path])
    assert type(cfg) is model
    assert {k: getattr(cfg, k) for k in COMMON_DEFAULTS} == COMMON_DEFAULTS
    assert cfg.database_ssl_mode == ssl_mode
    assert cfg.database_server_id == 7 and cfg.connector_class == cls


@FLAVORS
def test_required_properties_are_all_listed(tmp_path: Path, cls: str) -> None:
    problems = problems_of(tmp_path, {"connector.class": cls})
    assert sorted(p.split("erp-my': ", 1)[1] for p in problems) == [
        f"required property '{prop}' is missing"
        for prop in ("database.hostname", "database.server.id", "database.user", "topic.prefix")]


# --- every enum --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "prop", "bad", "choices"), [
    (MYSQL, "snapshot.mode", "sometimes", "initial, no_data, never, schema_only, initial_only, when_needed, always"),
    (MYSQL, "snapshot.locking.mode", "maximal", "minimal, none"),
    (MYSQL, "decimal.handling.mode", "exact", "precise, double, string"),
    (MYSQL, "time.precision.mode", "fine", "adaptive_time_microseconds, connect"),
    (MYSQL, "binary.handling.mode", "base32", "bytes, base64, base64-url-safe, hex"),
    (MYSQL, "bigint.unsigned.handling.mode", "string", "long, precise"),
    (MYSQL, "database.ssl.mode", "on", "disabled, preferred, required, verify_ca, verify_identity"),
    (MARIADB, "database.ssl.mode", "disabled", "disable, trust, verify-ca, verify-full"),
    (MARIADB, "database.ssl.mode", "verify_identity", "disable, trust, verify-ca, verify-full"),
    (MYSQL, "event.processing.failure.handling.mode", "panic", "fail"),
    (MYSQL, "inconsistent.schema.handling.mode", "panic", "fail"),
])
def test_every_enum_lists_what_is_accepted(tmp_path: Path, cls: str, prop: str, bad: str, choices: str) -> None:
    problem = one_problem(tmp_path, my_config(cls, **{prop: bad}))
    assert problem.endswith(f"property '{prop}' = '{bad}' is not one of: {choices}")


@pytest.mark.parametrize(("cls", "prop", "value", "attr", "expected"), [
    (MYSQL, "snapshot.mode", "NEVER", "snapshot_mode", "no_data"),
    (MYSQL, "snapshot.mode", "schema_only", "snapshot_mode", "no_data"),
    (MARIADB, "snapshot.mode", "no_data", "snapshot_mode", "no_data"),
    (MYSQL, "snapshot.mode", " When_Needed ", "snapshot_mode", "when_needed"),
    (MYSQL, "snapshot.mode", "initial_only", "snapshot_mode", "initial_only"),
    (MARIADB, "snapshot.mode", "always", "snapshot_mode", "always"),
    (MYSQL, "snapshot.locking.mode", "NONE", "snapshot_locking_mode", "none"),
    (MYSQL, "decimal.handling.mode", "precise", "decimal_handling_mode", "precise"),
    (MYSQL, "decimal.handling.mode", "double", "decimal_handling_mode", "double"),
    (MYSQL, "time.precision.mode", "connect", "time_precision_mode", "connect"),
    (MARIADB, "time.precision.mode", "CONNECT", "time_precision_mode", "connect"),
    (MYSQL, "binary.handling.mode", "hex", "binary_handling_mode", "hex"),
    (MARIADB, "binary.handling.mode", "base64-url-safe", "binary_handling_mode", "base64-url-safe"),
    (MYSQL, "bigint.unsigned.handling.mode", "Precise", "bigint_unsigned_handling_mode", "precise"),
    (MYSQL, "database.ssl.mode", "VERIFY_IDENTITY", "database_ssl_mode", "verify_identity"),
    (MARIADB, "database.ssl.mode", "verify-full", "database_ssl_mode", "verify-full"),
    (MARIADB, "database.ssl.mode", "trust", "database_ssl_mode", "trust"),
    (MYSQL, "event.deserialization.failure.handling.mode", "FAIL", "event_deserialization_failure_handling_mode",
     "fail"),
])
def test_enum_values_case_insensitive_and_aliases(
        tmp_path: Path, cls: str, prop: str, value: str, attr: str, expected: str) -> None:
    assert getattr(load_my(tmp_path, cls, **{prop: value}), attr) == expected


@pytest.mark.parametrize(("prop", "value", "reason"), [
    ("snapshot.mode", "recovery", "it rebuilds a lost schema history topic; this bridge keeps its schema "
                                  "history in the journal"),
    ("snapshot.mode", "schema_only_recovery", "it rebuilds a lost schema history topic"),
    ("snapshot.mode", "custom", "supported: initial, no_data"),
    ("snapshot.locking.mode", "extended", "the global read lock is held only while the snapshot reads the schema "
                                          "and the binlog position (minimal)"),
    ("snapshot.locking.mode", "minimal_percona", "supported: minimal, none"),
    ("time.precision.mode", "adaptive", "Debezium's MySQL and MariaDB connectors no longer support it; use "
                                        "adaptive_time_microseconds"),
    ("time.precision.mode", "isostring", "not supported yet for MySQL and MariaDB"),
    ("time.precision.mode", "nanoseconds", "supported: adaptive_time_microseconds, connect"),
    ("event.deserialization.failure.handling.mode", "warn",
     "an event that cannot be decoded stops the connector; nothing is skipped silently"),
    ("event.processing.failure.handling.mode", "skip", "nothing is skipped silently"),
    ("inconsistent.schema.handling.mode", "ignore", "nothing is skipped silently"),
])
def test_debezium_values_we_do_not_run_are_refused_with_reason(
        tmp_path: Path, prop: str, value: str, reason: str) -> None:
    problem = one_problem(tmp_path, my_config(**{prop: value}))
    assert f"property '{prop}' = '{value}' is not supported by this bridge (" in problem
    assert reason in problem, problem


# --- unknown, unsupported, only-default properties -------------------------------------------------


def test_unknown_property_suggests_the_closest(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, my_config(**{"databse.include.list": "erp"}))
    assert problem.endswith("unknown property 'databse.include.list' (did you mean 'database.include.list'?)")
    problem = one_problem(tmp_path, my_config(**{"database.server_id": "5"}))
    assert problem.endswith("unknown property 'database.server_id' (did you mean 'database.server.id'?)")
    assert one_problem(tmp_path, my_config(**{"frobnicate": "1"})).endswith("unknown property 'frobnicate'")


@pytest.mark.parametrize(("prop", "reason"), [
    ("schema.include.list", "a PostgreSQL connector property; use database.include.list"),
    ("schema.exclude.list", "a PostgreSQL connector property; use database.exclude.list"),
    ("database.dbname", "a PostgreSQL connector property; use database.include.list"),
    ("slot.name", "a PostgreSQL connector property"),
    ("schema.history.internal.kafka.topic", "the schema history is kept in the journal"),
    ("schema.history.internal", "the schema history is kept in the journal"),
    ("database.history.kafka.bootstrap.servers", "the schema history is kept in the journal"),
    ("database.ssl.truststore", "Java key and trust stores are not read"),
    ("database.ssl.keystore.password", "Java key and trust stores are not read"),
    ("database.server.name", "replaced by topic.prefix in Debezium 2.0"),
    ("table.whitelist", "renamed table.include.list"),
    ("database.jdbc.driver", "the bridge connects with PyMySQL"),
    ("binlog.metadata.based.schema", "binlog_row_metadata=FULL"),
    ("message.key.columns", "custom message keys are not supported yet"),
    ("table.ignore.builtin", "system databases are always ignored"),
    ("topic.naming.strategy", "topics are named <topic.prefix>.<database>.<table>"),
    ("transforms.unwrap.type", "single message transforms are not supported; use a mapping"),
    ("database.server.id.offset", "parallel snapshots are not supported"),
    ("column.mask.with.12.chars", ""),
    ("binlog.buffer.size", ""),
])
def test_recognised_but_unsupported_property_is_named_with_reason(tmp_path: Path, prop: str, reason: str) -> None:
    problem = one_problem(tmp_path, my_config(**{prop: "x"}))
    if reason:
        assert f"property '{prop}' is not supported by this bridge: " in problem and reason in problem, problem
    else:
        assert problem.endswith(f"property '{prop}' is not supported by this bridge"), problem


@pytest.mark.parametrize(("prop", "value", "default"), [
    ("include.schema.changes", "true", "false"),
    ("include.query", "true", "false"),
    ("provide.transaction.metadata", "true", "false"),
    ("heartbeat.interval.ms", "5000", "0"),
])
def test_only_default_properties(tmp_path: Path, prop: str, value: str, default: str) -> None:
    problem = one_problem(tmp_path, my_config(**{prop: value}))
    assert f"property '{prop}' = '{value}' is not supported yet (only '{default}'): " in problem
    load_my(tmp_path, **{prop: default})  # the default itself is accepted


@pytest.mark.parametrize(("prop", "value", "tail"), [
    ("database.server.id", "0", "must be between 1 and 4294967295"),
    ("database.server.id", "4294967296", "must be between 1 and 4294967295"),
    ("database.server.id", "abc", "is not an integer"),
    ("database.port", "70000", "must be between 1 and 65535"),
    ("connect.timeout.ms", "0", "must be at least 1"),
    ("snapshot.fetch.size", "-1", "must be at least 1"),
    ("connect.keep.alive", "yes", "is not a boolean (true or false)"),
    ("tombstones.on.delete", "maybe", "is not a boolean (true or false)"),
    ("errors.max.retries", "-2", "must be at least -1"),
    ("snapshot.max.threads", "4", "is not supported by this bridge: snapshots run on one thread"),
    ("tasks.max", "2", "is not supported by this bridge: it runs one task per connector"),
    ("topic.prefix", "erp/prod", "is not a valid topic name"),
    ("skipped.operations", "c,x", "has unknown operation 'x' (one of: c, u, d, t, r, or none)"),
    ("table.include.list", "erp\\..*,bad(", "has an invalid regular expression 'bad('"),
    ("gtid.source.includes", "[", "has an invalid regular expression '['"),
])
def test_bad_values(tmp_path: Path, prop: str, value: Any, tail: str) -> None:
    problem = one_problem(tmp_path, my_config(**{prop: value}))
    assert f"property '{prop}' = " in problem and tail in problem, problem


@pytest.mark.parametrize("kind", ["database", "table", "column"])
def test_include_and_exclude_of_one_kind_conflict(tmp_path: Path, kind: str) -> None:
    problem = one_problem(tmp_path, my_config(**{f"{kind}.include.list": "a", f"{kind}.exclude.list": "b"}))
    assert problem.endswith(f"properties '{kind}.include.list' and '{kind}.exclude.list' cannot both be set "
                            f"(Debezium: \"{kind}.include.list\" is already specified)")


def test_gtid_includes_and_excludes_conflict(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, my_config(**{"gtid.source.includes": "a", "gtid.source.excludes": "b"}))
    assert problem.endswith("properties 'gtid.source.includes' and 'gtid.source.excludes' cannot both be set "
                            "(Debezium: \"Cannot specify GTID excludes when includes are provided.\")")


def test_queue_must_exceed_batch(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, my_config(**{"max.batch.size": "100", "max.queue.size": "100"}))
    assert problem.endswith("property 'max.queue.size' = 100 must be larger than 'max.batch.size' (100)")


def test_every_problem_at_once(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, my_config(MARIADB, **{
        "database.server.id": None, "snapshot.mode": "recovery", "schema.include.list": "erp",
        "database.ssl.mode": "disabled", "tabel.include.list": "x"}))
    assert len(problems) == 5, problems


# --- filters ---------------------------------------------------------------------------------------


def test_database_and_table_filters_full_case_insensitive_match(tmp_path: Path) -> None:
    cfg = load_my(tmp_path, **{"database.include.list": "erp,sales_.*",
                               "table.include.list": "erp\\.ord.*, sales_eu.x"})
    assert cfg.database_included("erp") and cfg.database_included("ERP") and cfg.database_included("sales_eu")
    assert not cfg.database_included("erp2") and not cfg.database_included("xerp")
    assert cfg.table_included("erp", "orders") and cfg.table_included("Erp", "ORDERS")
    assert not cfg.table_included("erp", "customers")
    assert not cfg.table_included("erp2", "orders")  # the database filter applies too
    assert cfg.table_included("sales_eu", "x") and not cfg.table_included("sales_eu", "xy")
    assert not cfg.table_included("erpx", "orders")  # the escaped dot is a dot, and the match is anchored


def test_exclude_lists(tmp_path: Path) -> None:
    cfg = load_my(tmp_path, **{"database.exclude.list": "audit.*", "table.exclude.list": "erp\\.tmp_.*"})
    assert cfg.table_included("erp", "orders")
    assert not cfg.table_included("audit_2024", "log")
    assert not cfg.table_included("erp", "tmp_load")


def test_built_in_databases_are_never_included(tmp_path: Path) -> None:
    cfg = load_my(tmp_path, **{"database.include.list": ".*"})
    assert cfg.table_included("erp", "orders")
    for db in ("mysql", "performance_schema", "sys", "information_schema", "MySQL"):
        assert not cfg.database_included(db) and not cfg.table_included(db, "t")


def test_column_filters(tmp_path: Path) -> None:
    cfg = load_my(tmp_path, **{"column.exclude.list": "erp\\.customers\\.(ssn|card_.*)"})
    assert cfg.column_included("erp", "customers", "name")
    assert not cfg.column_included("erp", "customers", "SSN")
    assert not cfg.column_included("erp", "customers", "card_no")
    assert cfg.column_included("erp", "orders", "ssn")
    cfg = load_my(tmp_path, **{"column.include.list": "erp\\.orders\\.(id|total)"})
    assert cfg.column_included("erp", "orders", "id") and not cfg.column_included("erp", "orders", "note")


def test_gtid_source_filters(tmp_path: Path) -> None:
    cfg = load_my(tmp_path)
    assert cfg.gtid_source_wanted("3e11fa47-71ca-11e1-9e33-c80aa9429562")
    uuid = "3E11FA47-71CA-11E1-9E33-C80AA9429562"
    cfg = load_my(tmp_path, **{"gtid.source.includes": "3e11fa47-.*"})
    assert cfg.gtid_source_wanted(uuid.lower()) and cfg.gtid_source_wanted(uuid)
    assert not cfg.gtid_source_wanted("aaaaaaaa-71ca-11e1-9e33-c80aa9429562")
    cfg = load_my(tmp_path, MARIADB, **{"gtid.source.excludes": "1-.*"})
    assert cfg.gtid_source_wanted("0-1") and not cfg.gtid_source_wanted("1-7")
    assert cfg.gtid_source_wanted("0-10")  # anchored: "1-.*" does not match inside "0-10"


def test_skipped_operations(tmp_path: Path) -> None:
    cfg = load_my(tmp_path)
    assert cfg.skipped("t") and not cfg.skipped("c")
    cfg = load_my(tmp_path, **{"skipped.operations": "none"})
    assert not any(cfg.skipped(op) for op in "cudtr")
    assert cfg.masked_dump()["skipped.operations"] == "none"
    cfg = load_my(tmp_path, **{"skipped.operations": " u , d "})
    assert cfg.skipped("u") and cfg.skipped("d") and not cfg.skipped("t")
    assert cfg.masked_dump()["skipped.operations"] == "u,d"


# --- connection settings ---------------------------------------------------------------------------


def test_connect_kwargs(tmp_path: Path) -> None:
    cfg = load_my(tmp_path, **{"database.port": "3307", "connect.timeout.ms": "2500"})
    assert cfg.connect_kwargs() == {"host": "10.0.0.7", "port": 3307, "user": "cdc", "password": PASSWORD,
                                    "connect_timeout": 2.5, "charset": "utf8mb4"}
    assert "password" not in load_my(tmp_path, MYSQL, **{"database.password": None}).connect_kwargs()


@pytest.mark.parametrize(("cls", "mode", "verify", "hostname"), [
    (MYSQL, "required", ssl.CERT_NONE, False),
    (MYSQL, "verify_ca", ssl.CERT_REQUIRED, False),
    (MYSQL, "verify_identity", ssl.CERT_REQUIRED, True),
    (MARIADB, "trust", ssl.CERT_NONE, False),
    (MARIADB, "verify-ca", ssl.CERT_REQUIRED, False),
    (MARIADB, "verify-full", ssl.CERT_REQUIRED, True),
])
def test_tls_levels(tmp_path: Path, cls: str, mode: str, verify: ssl.VerifyMode, hostname: bool) -> None:
    kwargs = load_my(tmp_path, cls, **{"database.ssl.mode": mode}).connect_kwargs()
    context = kwargs["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, hostname)
    assert "ssl_disabled" not in kwargs


def test_tls_disabled_and_preferred(tmp_path: Path) -> None:
    assert load_my(tmp_path, MARIADB).connect_kwargs()["ssl_disabled"] is True  # Debezium's MariaDB default
    assert load_my(tmp_path, **{"database.ssl.mode": "disabled"}).connect_kwargs()["ssl_disabled"] is True
    preferred = load_my(tmp_path).connect_kwargs()  # PyMySQL's own default: TLS when the server offers it
    assert "ssl" not in preferred and "ssl_disabled" not in preferred


# --- secrets and providers -------------------------------------------------------------------------


def test_env_provider_for_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_MY_PASSWORD", PASSWORD)
    monkeypatch.setenv("ERP_MY_HOST", "db7")
    cfg = load_my(tmp_path, MARIADB, **{"database.password": "${env:ERP_MY_PASSWORD}",
                                        "database.hostname": "${env:ERP_MY_HOST}.corp"})
    assert cfg.database_password is not None and cfg.database_password.get_secret_value() == PASSWORD
    assert cfg.database_hostname == "db7.corp"
    assert cfg.connect_kwargs()["password"] == PASSWORD


def test_missing_env_var_names_property_and_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERP_MY_PASSWORD", raising=False)
    problem = one_problem(tmp_path, my_config(**{"database.password": "${env:ERP_MY_PASSWORD}"}))
    assert problem.endswith("property 'database.password': ${env:ERP_MY_PASSWORD} is not set")


def test_secrets_never_in_repr_dump_or_errors(tmp_path: Path) -> None:
    cfg = load_my(tmp_path)
    for text in (repr(cfg), str(cfg), str(cfg.model_dump()), json.dumps(cfg.model_dump(mode="json")),
                 str(cfg.masked_dump())):
        assert PASSWORD not in text
    dump = cfg.masked_dump()
    assert dump["database.password"] == MASK
    assert dump["database.user"] == "cdc" and dump["database.server.id"] == 184054
    assert dump["decimal.handling.mode"] == "string" and dump["skipped.operations"] == "t"
    # A secret pasted into a misspelt property, a bad secret-store password and a quoted secret elsewhere.
    problems = problems_of(tmp_path, my_config(**{"database.passwrod": PASSWORD,
                                                  "database.ssl.truststore.password": PASSWORD,
                                                  "snapshot.mode": f"x{PASSWORD}"}))
    text = "\n".join(problems)
    assert PASSWORD not in text
    assert "unknown property 'database.passwrod' (did you mean 'database.password'?)" in text
    assert f"'x{MASK}'" in text


def test_validate_connector_flat_config() -> None:
    cfg = validate_connector({"name": "x", **my_config(MARIADB)})
    assert isinstance(cfg, MariaDbSourceConfig)
    with pytest.raises(ConfigError) as info:
        validate_connector({"name": "x", **my_config(**{"snapshot.mode": "nope"})})
    assert info.value.problems[0].startswith("connector 'x': property 'snapshot.mode' = 'nope'")


def test_the_example_mariadb_connector_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_MY_PASSWORD", "example")
    (cfg,) = load_connectors([Path(__file__).resolve().parents[2] / "config" / "examples" / "erp-mariadb.json"])
    assert isinstance(cfg, MariaDbSourceConfig)
    assert cfg.table_included("erp", "ocusma") and not cfg.table_included("other", "ocusma")


# --- incremental snapshots -------------------------------------------------------------------------


@FLAVORS
def test_signal_table_and_chunk_size(tmp_path: Path, cls: str) -> None:
    cfg = load_my(tmp_path, cls, **{"signal.data.collection": "erp.debezium_signal",
                                   "incremental.snapshot.chunk.size": "500"})
    assert cfg.signal_table == ("erp", "debezium_signal") and cfg.incremental_snapshot_chunk_size == 500
    default = load_my(tmp_path, cls)
    assert default.signal_table is None and default.incremental_snapshot_chunk_size == 1024


@pytest.mark.parametrize(("prop", "value", "tail"), [
    ("signal.data.collection", "debezium_signal", "is not a database.table name (e.g. erp.debezium_signal)"),
    ("signal.data.collection", "erp.x.signal", "is not a database.table name"),
    ("incremental.snapshot.chunk.size", "0", "must be at least 1"),
    ("incremental.snapshot.chunk.size", "many", "is not an integer"),
])
def test_incremental_snapshot_bad_values_name_the_property(tmp_path: Path, prop: str, value: str, tail: str) -> None:
    problem = one_problem(tmp_path, my_config(**{prop: value}))
    assert f"property '{prop}' = " in problem and tail in problem, problem


@pytest.mark.parametrize(("prop", "reason"), [
    ("incremental.snapshot.watermarking.strategy", "insert_insert"),
    ("incremental.snapshot.allow.schema.changes", "must not change during its incremental snapshot"),
])
def test_other_incremental_snapshot_properties_are_refused(tmp_path: Path, prop: str, reason: str) -> None:
    problem = one_problem(tmp_path, my_config(**{prop: "insert_delete"}))
    assert f"property '{prop}' is not supported by this bridge: " in problem and reason in problem, problem
