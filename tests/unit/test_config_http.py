"""HTTP sink connector configs: every property's default, every problem message, secrets kept out."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cdc.config import (
    MASK,
    DeliverySinkModel,
    DynamicsSinkConfig,
    FileStreamSinkConfig,
    HttpSinkConfig,
    HubSpotSinkConfig,
    NetSuiteSinkConfig,
    SalesforceSinkConfig,
    connector_classes,
    is_secret_property,
    load_connectors,
    validate_connector,
)
from cdc.config.registry import DeliverySinkConfig
from cdc.errors import ConfigError

SF_SECRET = "sf-Secret-0042-abcdef"
HS_TOKEN = "pat-na1-0042-abcdef"
NS_SECRET = "ns-Secret-0042-abcdef"
DYN_SECRET = "dyn-Secret-0042-abcdef"
OAUTH_SECRET = "oauth-Secret-0042-abcdef"

BASE: dict[str, dict[str, Any]] = {
    "HttpSink": {"http.url": "https://api.example.com/records/{subject}"},
    "SalesforceSink": {"salesforce.instance.url": "https://acme.my.salesforce.com", "salesforce.client.id": "cid",
                       "salesforce.client.secret": SF_SECRET, "mapper.entity": "Customer"},
    "HubSpotSink": {"hubspot.access.token": HS_TOKEN, "mapper.entity": "Customer"},
    "NetSuiteSink": {"netsuite.base.url": "https://123.suitetalk.api.netsuite.com", "netsuite.client.id": "nid",
                     "netsuite.client.secret": NS_SECRET, "mapper.entity": "Customer"},
    "DynamicsSink": {"dynamics.base.url": "https://acme.crm4.dynamics.com",
                     "dynamics.token.url": "https://login.microsoftonline.com/t1/oauth2/v2.0/token",
                     "dynamics.client.id": "did", "dynamics.client.secret": DYN_SECRET, "mapper.entity": "Customer"},
}
MODELS: dict[str, type[DeliverySinkModel]] = {
    "HttpSink": HttpSinkConfig, "SalesforceSink": SalesforceSinkConfig, "HubSpotSink": HubSpotSinkConfig,
    "NetSuiteSink": NetSuiteSinkConfig, "DynamicsSink": DynamicsSinkConfig}
ALL = list(BASE)


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "customer.sql"
    path.write_text("SELECT id, name FROM m3.customers\n", encoding="utf-8")
    return path


def props(mapping: Path, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": "crm", "connector.class": kind, "topics": "erp.m3.customers", "mapper.sql": str(mapping),
            **BASE[kind], **extra}


def load(mapping: Path, kind: str, **extra: Any) -> Any:
    cfg = validate_connector(props(mapping, kind, **extra))
    assert isinstance(cfg, MODELS[kind])
    return cfg


def problems(mapping: Path, kind: str, **extra: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_connector(props(mapping, kind, **extra))
    return info.value.problems


def one(mapping: Path, kind: str, **extra: Any) -> str:
    found = problems(mapping, kind, **extra)
    assert len(found) == 1, found
    return found[0]


# --- registry and defaults ----------------------------------------------------------------------------


def test_connector_classes_and_aliases() -> None:
    classes = connector_classes()
    for kind, model in MODELS.items():
        module = kind.removesuffix("Sink").lower()
        assert classes[f"sinks.{'http' if kind == 'HttpSink' else module}.{kind}"] is model
        assert classes[kind] is model
        assert model in DeliverySinkConfig.__args__


@pytest.mark.parametrize("kind", ALL)
def test_delivery_defaults(mapping: Path, kind: str) -> None:
    cfg = load(mapping, kind)
    assert (cfg.delivery_lanes, cfg.batch_max_bytes, cfg.batch_linger_ms, cfg.max_in_flight_requests) == (
        16, 4_194_304, 5, 16)
    assert (cfg.rate_limit_requests_per_second, cfg.rate_limit_records_per_second) == (0.0, 0.0)
    assert (cfg.circuit_breaker_failure_threshold, cfg.circuit_breaker_open_ms) == (5, 30_000)
    assert (cfg.errors_retry_timeout, cfg.errors_retry_delay_max_ms, cfg.errors_tolerance) == (-1, 60_000, "all")
    assert cfg.http_timeout_ms == 30_000 and cfg.field_map == {} and cfg.mapper_sql == mapping
    assert cfg.batch_max_records == {"HttpSink": 1, "SalesforceSink": 200, "HubSpotSink": 100, "NetSuiteSink": 1,
                                     "DynamicsSink": 1}[kind]


@pytest.mark.parametrize("kind", ALL)
def test_delivery_properties_as_strings_or_numbers(mapping: Path, kind: str) -> None:
    cfg = load(mapping, kind, **{"delivery.lanes": "1024", "batch.max.bytes": 1000, "batch.linger.ms": "0",
                                 "max.in.flight.requests": "4", "rate.limit.requests.per.second": "2.5",
                                 "rate.limit.records.per.second": 100, "circuit.breaker.failure.threshold": "1",
                                 "circuit.breaker.open.ms": "1000", "errors.retry.timeout": "0",
                                 "errors.retry.delay.max.ms": "0", "errors.tolerance": "NONE",
                                 "http.timeout.ms": "500"})
    assert (cfg.delivery_lanes, cfg.batch_max_bytes, cfg.batch_linger_ms, cfg.max_in_flight_requests) == (
        1024, 1000, 0, 4)
    assert (cfg.rate_limit_requests_per_second, cfg.rate_limit_records_per_second) == (2.5, 100.0)
    assert (cfg.circuit_breaker_failure_threshold, cfg.circuit_breaker_open_ms) == (1, 1000)
    assert (cfg.errors_retry_timeout, cfg.errors_retry_delay_max_ms, cfg.errors_tolerance) == (0, 0, "none")
    assert cfg.http_timeout_ms == 500


def test_generic_defaults(mapping: Path) -> None:
    cfg = load(mapping, "HttpSink")
    assert (cfg.http_url, cfg.http_method, cfg.http_delete_url, cfg.http_delete_method) == (
        "https://api.example.com/records/{subject}", "POST", None, "DELETE")
    assert (cfg.http_batch_url, cfg.http_body, cfg.http_body_template, cfg.http_headers) == (None, "data", None, {})
    assert (cfg.http_auth_type, cfg.http_auth_apikey_header) == ("none", "X-API-Key")
    assert cfg.mapper_entity is None  # optional for the generic sink


def test_vendor_defaults(mapping: Path) -> None:
    sf = load(mapping, "SalesforceSink", **{"salesforce.instance.url": "https://acme.my.salesforce.com/"})
    assert (sf.salesforce_api_version, sf.salesforce_sobject, sf.salesforce_external_id_field) == (
        "60.0", None, "ERP_Id__c")
    assert sf.token_url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert isinstance(sf.salesforce_client_secret, SecretStr)
    hs = load(mapping, "HubSpotSink")
    assert (hs.hubspot_base_url, hs.hubspot_object_type, hs.hubspot_id_property) == (
        "https://api.hubapi.com", None, "erp_id")
    ns = load(mapping, "NetSuiteSink")
    assert ns.token_url == "https://123.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token"
    assert ns.netsuite_record_type is None
    dyn = load(mapping, "DynamicsSink")
    assert dyn.scope == "https://acme.crm4.dynamics.com/.default"
    assert (dyn.dynamics_entity_set, dyn.dynamics_alternate_key) == (None, None)


def test_vendor_overrides(mapping: Path) -> None:
    sf = load(mapping, "SalesforceSink", **{"salesforce.api.version": "v59.0", "salesforce.sobject": "Kunde__c",
                                            "salesforce.external.id.field": "Legacy__c",
                                            "salesforce.token.url": "https://login.salesforce.com/services/oauth2/token"})
    assert (sf.salesforce_api_version, sf.salesforce_sobject, sf.salesforce_external_id_field) == (
        "59.0", "Kunde__c", "Legacy__c")
    assert sf.token_url == "https://login.salesforce.com/services/oauth2/token"
    dyn = load(mapping, "DynamicsSink", **{"dynamics.scope": "api://x/.default", "dynamics.entity.set": "erp_x",
                                           "dynamics.alternate.key": "erp_code"})
    assert (dyn.scope, dyn.dynamics_entity_set, dyn.dynamics_alternate_key) == ("api://x/.default", "erp_x", "erp_code")
    ns = load(mapping, "NetSuiteSink", **{"netsuite.token.url": "https://t.example.com/token",
                                          "netsuite.record.type": "customrecord_erp"})
    assert (ns.token_url, ns.netsuite_record_type) == ("https://t.example.com/token", "customrecord_erp")


def test_generic_batch_default_follows_the_batch_url(mapping: Path) -> None:
    batch = load(mapping, "HttpSink", **{"http.url": None, "http.batch.url": "https://api.example.com/batch/"})
    assert (batch.http_batch_url, batch.batch_max_records) == ("https://api.example.com/batch", 1000)
    assert load(mapping, "HttpSink", **{"http.url": None, "http.batch.url": "https://h/batch",
                                        "batch.max.records": "50"}).batch_max_records == 50


def test_vendor_object_named_explicitly_needs_no_entity(mapping: Path) -> None:
    for kind, prop in (("SalesforceSink", "salesforce.sobject"), ("HubSpotSink", "hubspot.object.type"),
                       ("NetSuiteSink", "netsuite.record.type"), ("DynamicsSink", "dynamics.entity.set")):
        cfg = load(mapping, kind, **{"mapper.entity": None, prop: "thing"})
        assert cfg.mapper_entity is None


def test_load_from_file_with_relative_mapping(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "c.sql").write_text("SELECT id FROM m3.customers\n", encoding="utf-8")
    path = tmp_path / "crm.json"
    path.write_text(json.dumps({"name": "crm", "config": {
        "connector.class": "sinks.salesforce.SalesforceSink", "topics": "erp.m3.customers",
        "mapper.sql": "maps/c.sql", **BASE["SalesforceSink"]}}), encoding="utf-8")
    [cfg] = load_connectors([path])
    assert isinstance(cfg, SalesforceSinkConfig) and cfg.mapper_sql == tmp_path / "maps" / "c.sql"


# --- problems ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL)
def test_mapper_sql_is_required(mapping: Path, kind: str) -> None:
    assert one(mapping, kind, **{"mapper.sql": None}) == "connector 'crm': required property 'mapper.sql' is missing"


@pytest.mark.parametrize(("kind", "prop"), [("SalesforceSink", "salesforce.sobject"),
                                            ("HubSpotSink", "hubspot.object.type"),
                                            ("NetSuiteSink", "netsuite.record.type"),
                                            ("DynamicsSink", "dynamics.entity.set")])
def test_vendor_needs_entity_or_object(mapping: Path, kind: str, prop: str) -> None:
    vendor = MODELS[kind].VENDOR  # type: ignore[attr-defined]
    assert one(mapping, kind, **{"mapper.entity": None}) == (
        f"connector 'crm': required property 'mapper.entity' is missing (or name the {vendor} object with "
        f"'{prop}'); one of: Customer, Contact, Product, Order, Invoice, Payment, Shipment")


@pytest.mark.parametrize(("kind", "limit", "why"), [
    ("HttpSink", 1000, "the batch endpoint takes at most 1000 records"),
    ("SalesforceSink", 200, "Salesforce's sObject Collections take at most 200 records per request"),
    ("HubSpotSink", 100, "HubSpot's batch upsert takes at most 100 inputs per request"),
    ("NetSuiteSink", 1, "NetSuite's record service takes one record per request"),
    ("DynamicsSink", 1, "the sink sends one record per Dataverse request"),
])
def test_batch_max_records_above_the_vendor_limit(mapping: Path, kind: str, limit: int, why: str) -> None:
    extra: dict[str, Any] = {"batch.max.records": str(limit + 1)}
    if kind == "HttpSink":
        extra |= {"http.url": None, "http.batch.url": "https://h/batch"}
    assert one(mapping, kind, **extra) == (
        f"connector 'crm': property 'batch.max.records' = '{limit + 1}' must be at most {limit} ({why})")
    assert load(mapping, kind, **{**extra, "batch.max.records": limit}).batch_max_records == limit


@pytest.mark.parametrize(("extra", "problem"), [
    ({"delivery.lanes": "0"}, "property 'delivery.lanes' = '0' must be between 1 and 1024"),
    ({"delivery.lanes": "2000"}, "property 'delivery.lanes' = '2000' must be between 1 and 1024"),
    ({"batch.max.records": "0"}, "property 'batch.max.records' = '0' must be at least 1"),
    ({"batch.max.bytes": "lots"}, "property 'batch.max.bytes' = 'lots' is not an integer"),
    ({"batch.linger.ms": -1}, "property 'batch.linger.ms' = -1 must be at least 0"),
    ({"max.in.flight.requests": "0"}, "property 'max.in.flight.requests' = '0' must be at least 1"),
    ({"rate.limit.requests.per.second": "-1"},
     "property 'rate.limit.requests.per.second' = '-1' must be a number of at least 0 (0 = no limit)"),
    ({"rate.limit.records.per.second": "fast"}, "property 'rate.limit.records.per.second' = 'fast' is not a number"),
    ({"rate.limit.records.per.second": "inf"},
     "property 'rate.limit.records.per.second' = 'inf' must be a number of at least 0 (0 = no limit)"),
    ({"circuit.breaker.failure.threshold": "0"},
     "property 'circuit.breaker.failure.threshold' = '0' must be at least 1"),
    ({"circuit.breaker.open.ms": "0"}, "property 'circuit.breaker.open.ms' = '0' must be at least 1"),
    ({"errors.retry.timeout": "-2"},
     "property 'errors.retry.timeout' = '-2' must be -1 (retry forever), 0 (never retry) or a number of milliseconds"),
    ({"errors.retry.delay.max.ms": "-1"}, "property 'errors.retry.delay.max.ms' = '-1' must be at least 0"),
    ({"errors.tolerance": "some"}, "property 'errors.tolerance' = 'some' is not one of: none, all"),
    ({"http.timeout.ms": "0"}, "property 'http.timeout.ms' = '0' must be at least 1"),
    ({"errors.deadletterqueue.topic.name": "dlq"},
     "property 'errors.deadletterqueue.topic.name' is not supported by the HTTP sinks: rejected records go to the "
     "dead-letter store in the data directory (cdc dlq)"),
    ({"mapper.entity": "Kunde"}, "property 'mapper.entity' = 'Kunde' is not a canonical entity"),
    ({"errors.log.enable": "true"}, "property 'errors.log.enable' is not supported by this bridge"),
    ({"http.retries": "3"}, "unknown property 'http.retries'"),
])
@pytest.mark.parametrize("kind", ["HttpSink", "SalesforceSink"])
def test_delivery_property_problems(mapping: Path, kind: str, extra: dict[str, Any], problem: str) -> None:
    found = problems(mapping, kind, **extra)
    assert len(found) == 1 and found[0].startswith(f"connector 'crm': {problem}"), found


def test_retry_properties_stay_unsupported_for_the_file_sink(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        validate_connector({"name": "f", "connector.class": "FileStreamSink", "file": str(tmp_path / "o.jsonl"),
                            "topics": "t", "errors.retry.timeout": "1000"})
    assert info.value.problems == ["connector 'f': property 'errors.retry.timeout' is not supported by this bridge"]
    assert "errors.retry.timeout" not in HttpSinkConfig.UNSUPPORTED
    assert "errors.retry.timeout" in FileStreamSinkConfig.UNSUPPORTED


@pytest.mark.parametrize(("extra", "problem"), [
    ({"http.url": None}, "one of the properties 'http.url' or 'http.batch.url' must be set"),
    ({"http.batch.url": "https://h/batch"}, "properties 'http.url' and 'http.batch.url' are mutually exclusive"),
    ({"http.url": "ftp://h/x"}, "property 'http.url' = 'ftp://h/x' is not an http:// or https:// URL"),
    ({"http.url": "https://h/{subjct}"},
     "property 'http.url' = 'https://h/{subjct}' has an unknown placeholder {subjct} (use {subject}, {type}, {id}, "
     "{data.FIELD})"),
    ({"http.url": "https://h/{data}"}, "property 'http.url' = 'https://h/{data}' has an unknown placeholder {data}"),
    ({"http.delete.url": "https://h/{x.y}"},
     "property 'http.delete.url' = 'https://h/{x.y}' has an unknown placeholder"),
    ({"http.method": "GET"}, "property 'http.method' = 'GET' is not one of: POST, PUT, PATCH"),
    ({"http.delete.method": "get"}, "property 'http.delete.method' = 'get' is not one of: DELETE, POST, PUT, PATCH"),
    ({"http.body": "form"}, "property 'http.body' = 'form' is not one of: data, cloudevent, template"),
    ({"http.body": "template"}, "property 'http.body.template' is required when 'http.body' is 'template'"),
    ({"http.body.template": "{}"}, "property 'http.body.template' is only used when 'http.body' is 'template'"),
    ({"http.body": "template", "http.body.template": "{oops"},
     "property 'http.body.template' = '{oops' is not valid JSON"),
    ({"http.body": "template", "http.body.template": '{"a": "{nope}"}'},
     "property 'http.body.template' = '{\"a\": \"{nope}\"}' has an unknown placeholder {nope} (use {subject}, {type}, "
     "{id}, {data.FIELD} or {data})"),
    ({"http.body": "cloudevent", "field.map.name": "n"},
     "properties 'field.map.*' have no effect when 'http.body' is 'cloudevent'"),
    ({"batch.max.records": "10"},
     "property 'batch.max.records' = '10' needs 'http.batch.url': without it each record is its own request"),
    ({"http.url": None, "http.batch.url": "https://h/{subject}"}, "property 'http.batch.url' = 'https://h/{subject}' "
                                                                  "takes no placeholders"),
    ({"http.url": None, "http.batch.url": "https://h/b", "http.method": "PUT"},
     "property 'http.method' is only used with 'http.url'"),
    ({"http.auth.type": "kerberos"},
     "property 'http.auth.type' = 'kerberos' is not one of: none, bearer, basic, apikey, oauth2"),
    ({"http.auth.type": "bearer"}, "property 'http.auth.token' is required when 'http.auth.type' is 'bearer'"),
    ({"http.auth.token": "tok-12345"}, "property 'http.auth.token' is not used when 'http.auth.type' is 'none'"),
    ({"http.auth.type": "apikey", "http.auth.apikey": "k-12345", "http.auth.apikey.header": "bad header"},
     "property 'http.auth.apikey.header' = 'bad header' is not a valid HTTP header name"),
    ({"http.auth.type": "oauth2", "http.auth.oauth2.token.url": "https://h/t", "http.auth.oauth2.client.id": "c",
      "http.auth.oauth2.client.secret": OAUTH_SECRET, "http.auth.username": "u"},
     "property 'http.auth.username' is not used when 'http.auth.type' is 'oauth2'"),
    ({"http.auth.type": "oauth2", "http.auth.oauth2.token.url": "token", "http.auth.oauth2.client.id": "c",
      "http.auth.oauth2.client.secret": OAUTH_SECRET},
     "property 'http.auth.oauth2.token.url' = 'token' is not an http:// or https:// URL"),
    ({"http.header.Bad Name": "x"}, "property 'http.header.Bad Name' does not name a valid HTTP header"),
    ({"http.header.Host": "x"}, "property 'http.header.Host' may not be set: the HTTP client sets it"),
    ({"http.header.idempotency-key": "x"},
     "property 'http.header.idempotency-key' may not be set: the sink sets it to the event id"),
    ({"http.auth.type": "bearer", "http.auth.token": "tok-12345", "http.header.Authorization": "Bearer x"},
     "property 'http.header.Authorization' may not be set: 'http.auth.type' = 'bearer' sets it"),
    ({"http.auth.type": "apikey", "http.auth.apikey": "k-12345", "http.header.x-api-key": "other"},
     "property 'http.header.x-api-key' may not be set: 'http.auth.type' = 'apikey' sets it"),
    ({"http.header.X-A": "1", "http.header.x-a": "2"}, "properties 'http.header.X-A' and 'http.header.x-a' name the "
                                                       "same header"),
    ({"http.header.X-A": ""}, "property 'http.header.X-A' = '' must not be empty"),
    ({"http.header.X-A": "a\nb"}, "property 'http.header.X-A' = 'a\nb' must not contain line breaks"),
    ({"http.header.X-A": {"v": 1}},
     "property 'http.header.X-A' must be a string, number or boolean, not a JSON object"),
    ({"field.map.name": "has space"}, "property 'field.map.name' = 'has space' is not a field name (no spaces)"),
    ({"field.map.a": "X", "field.map.b": "X"}, "properties 'field.map.a' and 'field.map.b' both send to 'X'"),
    ({"field.map.": "X"}, "property 'field.map.' must name a field after 'field.map.'"),
])
def test_generic_problems(mapping: Path, extra: dict[str, Any], problem: str) -> None:
    found = problems(mapping, "HttpSink", **extra)
    assert len(found) == 1 and found[0].startswith(f"connector 'crm': {problem}"), found


def test_generic_auth_lists_every_missing_property(mapping: Path) -> None:
    assert problems(mapping, "HttpSink", **{"http.auth.type": "oauth2"}) == [
        f"connector 'crm': property '{p}' is required when 'http.auth.type' is 'oauth2'"
        for p in ("http.auth.oauth2.token.url", "http.auth.oauth2.client.id", "http.auth.oauth2.client.secret")]
    assert problems(mapping, "HttpSink", **{"http.auth.type": "basic"}) == [
        f"connector 'crm': property '{p}' is required when 'http.auth.type' is 'basic'"
        for p in ("http.auth.username", "http.auth.password")]


def test_entity_fields_are_checked_in_templates_and_field_maps(mapping: Path) -> None:
    found = problems(mapping, "HttpSink", **{
        "mapper.entity": "customer", "http.url": "https://h/{data.country}/{data.contry}/{subject}",
        "http.body": "template", "http.body.template": '{"x": "{data.emial}", "y": "{data}", "z": "{data.name}"}',
        "field.map.nme": "Name", "field.map.email": "Email"})
    assert found == [
        "connector 'crm': property 'http.url' uses {data.contry}: Customer has no field 'contry' (did you mean "
        "'country'?)",
        "connector 'crm': property 'http.body.template' uses {data.emial}: Customer has no field 'emial' (did you "
        "mean 'email'?)",
        "connector 'crm': property 'field.map.nme': Customer has no field 'nme' (did you mean 'name'?)"]


def test_any_field_name_without_entity(mapping: Path) -> None:
    cfg = load(mapping, "HttpSink", **{"http.url": "https://h/{data.whatever}", "field.map.Whatever": "w",
                                       "field.map.gone": ""})
    assert cfg.field_map == {"Whatever": "w", "gone": ""}


@pytest.mark.parametrize(("kind", "extra", "problem"), [
    ("SalesforceSink", {"salesforce.instance.url": None}, "required property 'salesforce.instance.url' is missing"),
    ("SalesforceSink", {"salesforce.client.id": ""}, "property 'salesforce.client.id' = '' must not be empty"),
    ("SalesforceSink", {"salesforce.client.secret": ""}, "property 'salesforce.client.secret' = '' must not be empty"),
    ("SalesforceSink", {"salesforce.api.version": "sixty"},
     "property 'salesforce.api.version' = 'sixty' is not a Salesforce API version like 60.0"),
    ("SalesforceSink", {"salesforce.api.version": "45.0"},
     "property 'salesforce.api.version' = '45.0' must be at least 46.0 (the first with sObject Collections upsert)"),
    ("SalesforceSink", {"salesforce.sobject": "Bad-Name"},
     "property 'salesforce.sobject' = 'Bad-Name' is not an API name (letters, digits and '_', starting with a letter)"),
    ("SalesforceSink", {"salesforce.external.id.field": "1x"}, "property 'salesforce.external.id.field' = '1x' is not "
                                                               "an API name"),
    ("SalesforceSink", {"salesforce.instance.url": "acme.my.salesforce.com"},
     "property 'salesforce.instance.url' = 'acme.my.salesforce.com' is not an http:// or https:// URL"),
    ("SalesforceSink", {"field.map.emial": "Email__c"},
     "property 'field.map.emial': Customer has no field 'emial' (did you mean 'email'?)"),
    ("HubSpotSink", {"hubspot.access.token": None}, "required property 'hubspot.access.token' is missing"),
    ("HubSpotSink", {"hubspot.object.type": "a/b"},
     "property 'hubspot.object.type' = 'a/b' is not a HubSpot object type (letters, digits, '_' and '-')"),
    ("HubSpotSink", {"hubspot.id.property": "erp id"}, "property 'hubspot.id.property' = 'erp id' is not a property "
                                                      "name"),
    ("HubSpotSink", {"hubspot.base.url": "https://api.hubapi.com/{x}"},
     "property 'hubspot.base.url' = 'https://api.hubapi.com/{x}' takes no placeholders"),
    ("NetSuiteSink", {"netsuite.base.url": None}, "required property 'netsuite.base.url' is missing"),
    ("NetSuiteSink", {"netsuite.client.id": None}, "required property 'netsuite.client.id' is missing"),
    ("NetSuiteSink", {"netsuite.client.secret": None}, "required property 'netsuite.client.secret' is missing"),
    ("NetSuiteSink", {"netsuite.token.url": "nope"}, "property 'netsuite.token.url' = 'nope' is not an http:// or "
                                                     "https:// URL"),
    ("NetSuiteSink", {"netsuite.record.type": "sales order"}, "property 'netsuite.record.type' = 'sales order' is "
                                                              "not an API name"),
    ("DynamicsSink", {"dynamics.token.url": None}, "required property 'dynamics.token.url' is missing"),
    ("DynamicsSink", {"dynamics.alternate.key": "a b"}, "property 'dynamics.alternate.key' = 'a b' is not an API "
                                                        "name"),
    ("DynamicsSink", {"dynamics.entity.set": "x y"}, "property 'dynamics.entity.set' = 'x y' is not an API name"),
    ("DynamicsSink", {"http.url": "https://h"}, "unknown property 'http.url'"),
])
def test_vendor_problems(mapping: Path, kind: str, extra: dict[str, Any], problem: str) -> None:
    found = problems(mapping, kind, **extra)
    assert len(found) == 1 and found[0].startswith(f"connector 'crm': {problem}"), found


def test_every_problem_at_once(mapping: Path) -> None:
    found = problems(mapping, "SalesforceSink", **{"salesforce.client.secret": None, "delivery.lanes": "0",
                                                   "field.map.x": "X", "mapper.sql": None, "topics": None})
    assert len(found) == 5, found


# --- secrets -------------------------------------------------------------------------------------------


def test_secret_property_names_of_the_http_sinks() -> None:
    for name in ("http.auth.token", "http.auth.password", "http.auth.apikey", "http.auth.oauth2.client.secret",
                 "salesforce.client.secret", "hubspot.access.token", "netsuite.client.secret",
                 "dynamics.client.secret", "http.header.Authorization", "http.header.X-API-Key",
                 "http.header.Cookie", "http.header.X-Session-Id"):
        assert is_secret_property(name), name
    for name in ("http.auth.oauth2.token.url", "salesforce.token.url", "netsuite.token.url", "dynamics.token.url",
                 "http.auth.apikey.header", "http.auth.username", "http.auth.oauth2.client.id", "http.header.X-Tenant",
                 "http.header.Content-Type", "hubspot.id.property", "field.map.email", "http.url",
                 "dynamics.alternate.key", "mapper.key"):
        assert not is_secret_property(name), name


def test_secrets_masked_in_dumps_and_repr(mapping: Path) -> None:
    cfg = load(mapping, "HttpSink", **{"http.auth.type": "oauth2",
                                       "http.auth.oauth2.token.url": "https://h/oauth/token",
                                       "http.auth.oauth2.client.id": "bridge",
                                       "http.auth.oauth2.client.secret": OAUTH_SECRET,
                                       "http.header.X-API-Key": "hdr-key-98765", "http.header.X-Tenant": "north",
                                       "field.map.name": "Name"})
    dump = cfg.masked_dump()
    assert dump["http.auth.oauth2.client.secret"] == MASK and dump["http.header.X-API-Key"] == MASK
    assert dump["http.auth.oauth2.token.url"] == "https://h/oauth/token" and dump["http.header.X-Tenant"] == "north"
    assert dump["field.map.name"] == "Name" and "field.map.*" not in dump and "http.header.*" not in dump
    for text in (repr(cfg), str(cfg.model_dump()), json.dumps(dump)):
        assert OAUTH_SECRET not in text and "hdr-key-98765" not in text
    assert isinstance(cfg.http_headers["X-API-Key"], SecretStr) and cfg.http_headers["X-Tenant"] == "north"
    for kind, secret in (("SalesforceSink", SF_SECRET), ("HubSpotSink", HS_TOKEN), ("NetSuiteSink", NS_SECRET),
                         ("DynamicsSink", DYN_SECRET)):
        vendor = load(mapping, kind)
        text = repr(vendor) + json.dumps(vendor.masked_dump())
        assert secret not in text and MASK in text


def test_secrets_never_in_problems(mapping: Path) -> None:
    found = problems(mapping, "HttpSink", **{
        "http.auth.token": "tok-0042-abcdef", "http.auth.type": "basic", "http.auth.password": OAUTH_SECRET,
        "http.header.Authorization": f"Bearer {HS_TOKEN}\n", "http.header.X-Note": f"x{OAUTH_SECRET}\ny",
        "http.auth.passwrd": SF_SECRET})
    text = "\n".join(found)
    for secret in ("tok-0042-abcdef", OAUTH_SECRET, HS_TOKEN, SF_SECRET):
        assert secret not in text
    assert re.search(r"property 'http.header.Authorization' may not be set", text)
    assert f"property 'http.header.X-Note' = 'x{MASK}\ny' must not contain line breaks" in text
    assert "unknown property 'http.auth.passwrd' (did you mean 'http.auth.password'?)" in text
