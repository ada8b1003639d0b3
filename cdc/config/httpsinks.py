"""HTTP sink connector configurations: the generic REST sink and the Salesforce, HubSpot, NetSuite and
Dynamics 365 presets.

Role: the typed, validated form of the five delivery sinks' connector configs. `DeliverySinkModel` holds
what the delivery engine reads for every one of them (lanes, batching, rate limits, circuit breaker,
retries, timeouts: its fields, with their defaults), the required ``mapper.sql`` (these sinks send
business events, never raw change events) and the ``field.map.<field>`` overrides; `VendorSinkModel`
adds the rule that ``mapper.entity`` is required unless the vendor object is named explicitly.
``batch.max.records`` defaults to the target's most records per request and may not exceed it (generic
sink: 1, or 1000 with ``http.batch.url``). Property names follow Kafka Connect's
style (dotted, lower case); ``errors.retry.timeout`` (-1 = retry forever) and
``errors.retry.delay.max.ms`` are Kafka Connect's own names and meanings. ``errors.tolerance`` defaults to
``all`` here: a record the target rejects goes to the dead-letter store and delivery goes on (``none``
stops the sink at the first rejection).

Templates (generic sink): ``http.url`` / ``http.delete.url`` may contain ``{subject}``, ``{type}``,
``{id}`` (the CloudEvent's) and ``{data.FIELD}`` (a field of the event's data, by its canonical /
select-list name); values are percent-encoded into the URL. ``http.body.template`` is JSON whose string
values may contain the same placeholders and ``{data}`` (the whole data object, after ``field.map.*``): a
string that is exactly one placeholder becomes that JSON value (number, boolean, null, object), a
placeholder inside a longer string is replaced by its text. An unknown placeholder, or a data field the
configured ``mapper.entity`` does not have, is a config error.

Prefixed properties (``http.header.NAME``, ``field.map.FIELD``) are gathered into one dict each before the
model validates; each entry is checked here and reported under its own property name. A header whose name
suggests a credential (``Authorization``, ``X-API-Key``, ...) is a secret (`cdc.config.secrets`).

Failure story: like every connector model, all problems at once (`validate_properties`), secrets never
quoted: credentials are `SecretStr`, and a property required by the chosen auth type, or set but unused
by it, is reported by name without its value.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

import orjson
from pydantic import Field, SecretStr, field_validator, model_validator

from cdc.config._base import (
    OptionalStr,
    PositiveInt,
    Secret,
    enum_of,
    int_between,
    show,
    to_int,
    to_nonempty_str,
    to_secret,
    to_str,
    v,
)
from cdc.config.secrets import SecretsFilter, is_secret_property, mask_value
from cdc.config.sinks import ENTITY_NAMES, MappedSinkModel, SinkModel, _entity, _mapping_file

__all__ = ["ATTRIBUTE_PLACEHOLDERS", "PLACEHOLDER", "DeliverySinkModel", "DynamicsSinkConfig", "HttpSinkConfig",
           "HubSpotSinkConfig", "NetSuiteSinkConfig", "SalesforceSinkConfig", "VendorSinkModel"]

# --- templates ---------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
ATTRIBUTE_PLACEHOLDERS = ("subject", "type", "id")
_DATA_FIELD = re.compile(r"data\.([A-Za-z_][A-Za-z0-9_]*)")


def _placeholders(text: str, *, whole_data: bool) -> Iterator[str]:
    """The placeholder names in `text`; ValueError (a problem tail) at the first unknown one."""
    for m in PLACEHOLDER.finditer(text):
        name = m.group(1).strip()
        if name in ATTRIBUTE_PLACEHOLDERS or _DATA_FIELD.fullmatch(name) or (whole_data and name == "data"):
            yield name
            continue
        allowed = "{subject}, {type}, {id}, {data.FIELD}" + (" or {data}" if whole_data else "")
        raise ValueError(f"has an unknown placeholder {{{name}}} (use {allowed})")


def data_fields(text: str, *, whole_data: bool = False) -> list[str]:
    """The data fields a (valid) template reads through ``{data.FIELD}``."""
    return [n[5:] for n in _placeholders(text, whole_data=whole_data) if n.startswith("data.")]


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def body_template_fields(text: str) -> list[str]:
    """The data fields a (valid) body template reads."""
    return [f for s in _json_strings(orjson.loads(text)) for f in data_fields(s, whole_data=True)]


# --- value checks (they raise ValueError with the tail of the problem sentence) -----------------------


def _check_url(text: str) -> str:
    parts = urlsplit(PLACEHOLDER.sub("x", text))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an http:// or https:// URL")
    return text


def _url_template(value: Any) -> str:
    text = to_nonempty_str(value)
    for _ in _placeholders(text, whole_data=False):
        pass
    return _check_url(text)


def _plain_url(value: Any) -> str:
    text = to_nonempty_str(value)
    if PLACEHOLDER.search(text):
        raise ValueError("takes no placeholders")
    return _check_url(text).rstrip("/")


def _optional_url(value: Any) -> str | None:
    return _plain_url(value) if to_str(value) else None


def _body_template(value: Any) -> str:
    text = to_nonempty_str(value)
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    for s in _json_strings(parsed):
        for _ in _placeholders(s, whole_data=True):
            pass
    return text


def _methods(*accepted: str) -> Any:
    def check(value: Any) -> str:
        text = to_str(value).upper()
        if text not in accepted:
            raise ValueError(f"is not one of: {', '.join(accepted)}")
        return text

    return check


def _rate(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("is not a number")
    try:
        n = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError("is not a number") from None
    if not math.isfinite(n) or n < 0:
        raise ValueError("must be a number of at least 0 (0 = no limit)")
    return n


def _retry_timeout(value: Any) -> int:
    n = to_int(value)
    if n < -1:
        raise ValueError("must be -1 (retry forever), 0 (never retry) or a number of milliseconds")
    return n


def _required_secret(value: Any) -> SecretStr:
    secret = to_secret(value)
    if secret is None:
        raise ValueError("must not be empty")
    return secret


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PATH_NAME = re.compile(r"[A-Za-z0-9_\-]+")


def _named(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> str:
        text = to_nonempty_str(value)
        if not pattern.fullmatch(text):
            raise ValueError(f"is not {what}")
        return text

    return check


def _optional(check: Any) -> Any:
    def optional(value: Any) -> str | None:
        return check(value) if to_str(value) else None

    return optional


def _header_name(value: Any) -> str:
    text = to_nonempty_str(value)
    if not _HEADER_NAME.fullmatch(text):
        raise ValueError("is not a valid HTTP header name")
    return text


def _salesforce_version(value: Any) -> str:
    text = to_nonempty_str(value).removeprefix("v")
    if not re.fullmatch(r"\d+\.0", text):
        raise ValueError("is not a Salesforce API version like 60.0")
    if float(text) < 46:
        raise ValueError("must be at least 46.0 (the first with sObject Collections upsert)")
    return text


ApiName = Annotated[str, v(_named(_API_NAME, "an API name (letters, digits and '_', starting with a letter)"))]
OptionalApiName = Annotated[str | None, v(_optional(_named(
    _API_NAME, "an API name (letters, digits and '_', starting with a letter)")))]
ClientId = Annotated[str, v(to_nonempty_str)]
RequiredSecret = Annotated[SecretStr, v(_required_secret)]
BaseUrl = Annotated[str, v(_plain_url)]
OptionalUrl = Annotated[str | None, v(_optional_url)]


def _pairs(value: Any) -> dict[str, Any]:
    """The gathered ``prefix.NAME`` entries (already checked by `_gather`) as a dict."""
    if isinstance(value, dict):
        return value
    return dict(value)


def _entity_fields(entity: str) -> tuple[str, ...]:
    # Local import: the config package stays importable (and fast) without the mapper stack; the entity
    # models are the single source of truth for field names.
    from mappers.entities import ENTITIES

    return tuple(ENTITIES[entity].model_fields)


def _parsed_entity(data: Mapping[str, Any]) -> str | None:
    try:
        return _entity(data["mapper.entity"]) if data.get("mapper.entity") is not None else None
    except (ValueError, KeyError):
        return None


def _given(data: Mapping[str, Any], prop: str) -> bool:
    value = data.get(prop)
    return value is not None and (not isinstance(value, str) or value.strip() != "")


def _unknown_field(entity: str, name: str, fields: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{entity} has no field '{name}'{hint}"


# --- the shared delivery model -----------------------------------------------------------------------

_DLQ_TOPIC_PROBLEM = ("property 'errors.deadletterqueue.topic.name' is not supported by the HTTP sinks: rejected "
                      "records go to the dead-letter store in the data directory (cdc dlq)")


class DeliverySinkModel(MappedSinkModel):
    """What the delivery engine reads for every HTTP sink, plus ``field.map.*``.

    Subclasses set `MAX_BATCH_RECORDS` (the target's most records per request) and `BATCH_LIMIT` (why,
    for the message), and may override `default_batch_max_records`.
    """

    MAPPER_REQUIRED: ClassVar[bool] = True
    UNSUPPORTED: ClassVar[dict[str, str]] = {
        k: r for k, r in SinkModel.UNSUPPORTED.items() if k not in ("errors.retry.timeout", "errors.retry.delay.max.ms")
    }
    MAX_BATCH_RECORDS: ClassVar[int] = 1
    BATCH_LIMIT: ClassVar[str] = "the target takes one record per request"
    # Prefix -> the alias of the dict field that gathers those properties.
    PREFIXED: ClassVar[Mapping[str, str]] = {"field.map.": "field.map.*"}

    mapper_sql: Annotated[Path, v(_mapping_file)] = Field(alias="mapper.sql")
    errors_tolerance: Annotated[Literal["none", "all"], v(enum_of("none", "all"))] = Field(
        "all", alias="errors.tolerance")
    errors_retry_timeout: Annotated[int, v(_retry_timeout)] = Field(-1, alias="errors.retry.timeout")
    errors_retry_delay_max_ms: Annotated[int, v(int_between(0))] = Field(60_000, alias="errors.retry.delay.max.ms")
    delivery_lanes: Annotated[int, v(int_between(1, 1024))] = Field(16, alias="delivery.lanes")
    batch_max_records: PositiveInt = Field(1, alias="batch.max.records")
    batch_max_bytes: PositiveInt = Field(4_194_304, alias="batch.max.bytes")
    batch_linger_ms: Annotated[int, v(int_between(0))] = Field(5, alias="batch.linger.ms")
    max_in_flight_requests: PositiveInt = Field(16, alias="max.in.flight.requests")
    rate_limit_requests_per_second: Annotated[float, v(_rate)] = Field(0.0, alias="rate.limit.requests.per.second")
    rate_limit_records_per_second: Annotated[float, v(_rate)] = Field(0.0, alias="rate.limit.records.per.second")
    circuit_breaker_failure_threshold: PositiveInt = Field(5, alias="circuit.breaker.failure.threshold")
    circuit_breaker_open_ms: PositiveInt = Field(30_000, alias="circuit.breaker.open.ms")
    http_timeout_ms: PositiveInt = Field(30_000, alias="http.timeout.ms")
    field_map: Annotated[dict[str, str], v(_pairs)] = Field(default_factory=dict, alias="field.map.*")

    # -- batch size: the default depends on the target, and on other properties for the generic sink --

    @classmethod
    def default_batch_max_records(cls, data: Mapping[str, Any]) -> int:
        return cls.MAX_BATCH_RECORDS

    @model_validator(mode="before")
    @classmethod
    def _batch_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("batch.max.records") is None:
            return {**data, "batch.max.records": cls.default_batch_max_records(data)}
        return data

    @field_validator("batch_max_records")
    @classmethod
    def _batch_within_limit(cls, n: int) -> int:
        if n > cls.MAX_BATCH_RECORDS:
            raise ValueError(f"must be at most {cls.MAX_BATCH_RECORDS} ({cls.BATCH_LIMIT})")
        return n

    # -- prefixed properties --

    @classmethod
    def validate_properties(
        cls, props: Mapping[str, Any], unresolved: Collection[str] = ()
    ) -> tuple[Self | None, list[str]]:
        plain, problems = cls._gather(props)
        model, found = super().validate_properties(plain, unresolved)
        problems = found + [SecretsFilter.redact(p) for p in problems]
        return (None, problems) if problems else (model, [])

    @classmethod
    def _gather(cls, props: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """`props` with each prefixed family folded into its dict property, and the entries' problems."""
        plain: dict[str, Any] = {}
        families: dict[str, list[tuple[str, Any]]] = {}
        problems: list[str] = []
        for prop, value in props.items():
            prefix = next((p for p in cls.PREFIXED if prop.startswith(p)), None)
            if prefix is None:
                plain[prop] = value
            elif isinstance(value, Mapping | list):
                problems.append(f"property '{prop}' must be a string, number or boolean, not a JSON "
                                f"{'object' if isinstance(value, Mapping) else 'array'}")
            elif value is not None:
                families.setdefault(prefix, []).append((prop[len(prefix):], value))
        for prefix, entries in families.items():
            checked, found = cls._check_family(prefix, entries, props)
            problems += found
            plain[cls.PREFIXED[prefix]] = tuple(checked.items())
        return plain, problems

    @classmethod
    def _check_family(cls, prefix: str, entries: list[tuple[str, Any]],
                      props: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        return _check_field_map(entries, _parsed_entity(props))

    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        problems = super()._check_combinations(data)
        if _given(data, "errors.deadletterqueue.topic.name"):
            problems.append(_DLQ_TOPIC_PROBLEM)
        return problems

    def masked_dump(self) -> dict[str, Any]:
        out = super().masked_dump()
        for alias in self.PREFIXED.values():
            out.pop(alias, None)
        for name, value in self.field_map.items():
            out[f"field.map.{name}"] = value
        return out



def _check_field_map(entries: list[tuple[str, Any]], entity: str | None) -> tuple[dict[str, str], list[str]]:
    fields = _entity_fields(entity) if entity is not None else None
    problems: list[str] = []
    out: dict[str, str] = {}
    targets: dict[str, str] = {}
    for name, value in entries:
        prop = f"field.map.{name}"
        if fields is not None and name not in fields:
            assert entity is not None
            problems.append(f"property '{prop}': {_unknown_field(entity, name, fields)}")
            continue
        if not name.strip():
            problems.append(f"property '{prop}' must name a field after 'field.map.'")
            continue
        try:
            target = to_str(value)
        except ValueError as exc:
            problems.append(f"property '{prop}' {exc}")
            continue
        if target and re.search(r"\s", target):
            problems.append(f"property '{prop}' = {show(prop, target)} is not a field name (no spaces)")
            continue
        if target and target in targets:
            problems.append(f"properties 'field.map.{targets[target]}' and '{prop}' both send to '{target}'")
            continue
        if target:
            targets[target] = name
        out[name] = target
    return out, problems


# --- the generic REST sink ---------------------------------------------------------------------------

_AUTH_PROPS: dict[str, tuple[str, ...]] = {
    "none": (),
    "bearer": ("http.auth.token",),
    "basic": ("http.auth.username", "http.auth.password"),
    "apikey": ("http.auth.apikey",),
    "oauth2": ("http.auth.oauth2.token.url", "http.auth.oauth2.client.id", "http.auth.oauth2.client.secret"),
}
_AUTH_OPTIONAL: dict[str, tuple[str, ...]] = {
    "apikey": ("http.auth.apikey.header",),
    "oauth2": ("http.auth.oauth2.scope",),
}
_ALL_AUTH_PROPS = tuple(p for props in (*_AUTH_PROPS.values(), *_AUTH_OPTIONAL.values()) for p in props)
# Headers the sink or the HTTP layer sets itself.
_RESERVED_HEADERS = {"content-length": "the HTTP client sets it", "host": "the HTTP client sets it",
                     "transfer-encoding": "the HTTP client sets it", "connection": "the HTTP client sets it",
                     "idempotency-key": "the sink sets it to the event id"}


class HttpSinkConfig(DeliverySinkModel):
    """Any REST endpoint: one request per record (``http.url``), or batches (``http.batch.url``)."""

    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = ("sinks.http.HttpSink", "HttpSink")
    MAX_BATCH_RECORDS: ClassVar[int] = 1000
    BATCH_LIMIT: ClassVar[str] = "the batch endpoint takes at most 1000 records"
    PREFIXED: ClassVar[Mapping[str, str]] = {"field.map.": "field.map.*", "http.header.": "http.header.*"}

    http_url: Annotated[str | None, v(_url_template)] = Field(None, alias="http.url")
    http_method: Annotated[str, v(_methods("POST", "PUT", "PATCH"))] = Field("POST", alias="http.method")
    http_delete_url: Annotated[str | None, v(_url_template)] = Field(None, alias="http.delete.url")
    http_delete_method: Annotated[str, v(_methods("DELETE", "POST", "PUT", "PATCH"))] = Field(
        "DELETE", alias="http.delete.method")
    http_batch_url: Annotated[str | None, v(_optional_url)] = Field(None, alias="http.batch.url")
    http_body: Annotated[Literal["data", "cloudevent", "template"], v(enum_of("data", "cloudevent", "template"))] = (
        Field("data", alias="http.body"))
    http_body_template: Annotated[str | None, v(_body_template)] = Field(None, alias="http.body.template")
    http_headers: Annotated[dict[str, str | SecretStr], v(_pairs)] = Field(default_factory=dict,
                                                                           alias="http.header.*")
    http_auth_type: Annotated[Literal["none", "bearer", "basic", "apikey", "oauth2"],
                              v(enum_of("none", "bearer", "basic", "apikey", "oauth2"))] = Field(
        "none", alias="http.auth.type")
    http_auth_token: Secret = Field(None, alias="http.auth.token")
    http_auth_username: OptionalStr = Field(None, alias="http.auth.username")
    http_auth_password: Secret = Field(None, alias="http.auth.password")
    http_auth_apikey_header: Annotated[str, v(_header_name)] = Field("X-API-Key", alias="http.auth.apikey.header")
    http_auth_apikey: Secret = Field(None, alias="http.auth.apikey")
    http_auth_oauth2_token_url: OptionalUrl = Field(None, alias="http.auth.oauth2.token.url")
    http_auth_oauth2_client_id: OptionalStr = Field(None, alias="http.auth.oauth2.client.id")
    http_auth_oauth2_client_secret: Secret = Field(None, alias="http.auth.oauth2.client.secret")
    http_auth_oauth2_scope: OptionalStr = Field(None, alias="http.auth.oauth2.scope")

    @classmethod
    def default_batch_max_records(cls, data: Mapping[str, Any]) -> int:
        return cls.MAX_BATCH_RECORDS if _given(data, "http.batch.url") else 1

    @classmethod
    def _check_family(cls, prefix: str, entries: list[tuple[str, Any]],
                      props: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        if prefix == "http.header.":
            return _check_headers(entries, props)
        return super()._check_family(prefix, entries, props)

    def masked_dump(self) -> dict[str, Any]:
        out = super().masked_dump()
        for name, value in self.http_headers.items():
            out[f"http.header.{name}"] = mask_value(f"http.header.{name}", value)
        return out

    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        problems = super()._check_combinations(data)
        batch = _given(data, "http.batch.url")
        if batch == _given(data, "http.url"):
            problems.append("properties 'http.url' and 'http.batch.url' are mutually exclusive; set only one"
                            if batch else "one of the properties 'http.url' or 'http.batch.url' must be set")
        if batch:
            problems += [f"property '{p}' is only used with 'http.url'"
                         for p in ("http.method", "http.delete.url", "http.delete.method") if _given(data, p)]
        elif _given(data, "batch.max.records"):
            try:
                if to_int(data["batch.max.records"]) > 1:
                    problems.append(f"property 'batch.max.records' = {show('', data['batch.max.records'])} needs "
                                    "'http.batch.url': without it each record is its own request")
            except ValueError:
                pass  # reported by the field
        body = str(data.get("http.body") or "data").strip().lower()
        if body == "template" and not _given(data, "http.body.template"):
            problems.append("property 'http.body.template' is required when 'http.body' is 'template'")
        if body != "template" and _given(data, "http.body.template"):
            problems.append("property 'http.body.template' is only used when 'http.body' is 'template'")
        if body == "cloudevent" and data.get("field.map.*"):
            problems.append("properties 'field.map.*' have no effect when 'http.body' is 'cloudevent' (the "
                            "CloudEvent is sent as the mapping wrote it)")
        problems += _auth_problems(data)
        problems += _template_field_problems(data)
        return problems


def _check_headers(entries: list[tuple[str, Any]], props: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    auth = str(props.get("http.auth.type") or "none").strip().lower()
    taken: dict[str, str] = {}
    if auth in ("bearer", "basic", "oauth2"):
        taken["authorization"] = f"'http.auth.type' = '{auth}' sets it"
    if auth == "apikey":
        taken[str(props.get("http.auth.apikey.header") or "X-API-Key").strip().lower()] = \
            "'http.auth.type' = 'apikey' sets it"
    problems: list[str] = []
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for name, value in entries:
        prop = f"http.header.{name}"
        lower = name.lower()
        if not _HEADER_NAME.fullmatch(name):
            problems.append(f"property '{prop}' does not name a valid HTTP header")
            continue
        reason = _RESERVED_HEADERS.get(lower) or taken.get(lower)
        if reason is not None:
            problems.append(f"property '{prop}' may not be set: {reason}")
            continue
        if lower in seen:
            problems.append(f"properties 'http.header.{seen[lower]}' and '{prop}' name the same header")
            continue
        seen[lower] = name
        secret = is_secret_property(prop)
        try:
            text = value if secret and isinstance(value, str) else to_str(value)  # secrets are not trimmed
        except ValueError as exc:
            problems.append(f"property '{prop}' {exc}")
            continue
        if not text or "\r" in text or "\n" in text:
            problems.append(f"property '{prop}' = {show(prop, text)} "
                            + ("must not be empty" if not text else "must not contain line breaks"))
            continue
        out[name] = _required_secret(text) if secret else text
    return out, problems


def _auth_problems(data: Mapping[str, Any]) -> list[str]:
    auth = str(data.get("http.auth.type") or "none").strip().lower()
    if auth not in _AUTH_PROPS:
        return []  # reported by the field
    needed = _AUTH_PROPS[auth]
    usable = needed + _AUTH_OPTIONAL.get(auth, ())
    problems = [f"property '{p}' is required when 'http.auth.type' is '{auth}'" for p in needed if not _given(data, p)]
    problems += [f"property '{p}' is not used when 'http.auth.type' is '{auth}'"
                 for p in _ALL_AUTH_PROPS if p not in usable and _given(data, p)]
    return problems


def _template_field_problems(data: Mapping[str, Any]) -> list[str]:
    """``{data.FIELD}`` placeholders naming fields the configured entity does not have."""
    entity = _parsed_entity(data)
    if entity is None:
        return []
    fields = _entity_fields(entity)
    problems: list[str] = []
    for prop in ("http.url", "http.delete.url", "http.body.template"):
        text = data.get(prop)
        if not isinstance(text, str):
            continue
        try:
            used = body_template_fields(text) if prop == "http.body.template" else data_fields(text)
        except ValueError:
            continue  # reported by the field (bad JSON or an unknown placeholder)
        problems += [f"property '{prop}' uses {{data.{f}}}: {_unknown_field(entity, f, fields)}"
                     for f in dict.fromkeys(used) if f not in fields]
    return problems


# --- the vendor presets ------------------------------------------------------------------------------


class VendorSinkModel(DeliverySinkModel):
    """A vendor preset: the object comes from ``mapper.entity`` (README object maps) unless named by
    `OBJECT_PROPERTY`."""

    VENDOR: ClassVar[str] = ""
    OBJECT_PROPERTY: ClassVar[str] = ""

    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        problems = super()._check_combinations(data)
        if not _given(data, "mapper.entity") and not _given(data, cls.OBJECT_PROPERTY):
            problems.append(f"required property 'mapper.entity' is missing (or name the {cls.VENDOR} object with "
                            f"'{cls.OBJECT_PROPERTY}'); one of: {', '.join(ENTITY_NAMES)}")
        return problems


class SalesforceSinkConfig(VendorSinkModel):
    """Salesforce REST API: sObject Collections upsert by external id, delete by external id."""

    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = ("sinks.salesforce.SalesforceSink", "SalesforceSink")
    VENDOR: ClassVar[str] = "Salesforce"
    OBJECT_PROPERTY: ClassVar[str] = "salesforce.sobject"
    MAX_BATCH_RECORDS: ClassVar[int] = 200
    BATCH_LIMIT: ClassVar[str] = "Salesforce's sObject Collections take at most 200 records per request"

    salesforce_instance_url: BaseUrl = Field(alias="salesforce.instance.url")
    salesforce_token_url: OptionalUrl = Field(None, alias="salesforce.token.url")
    salesforce_client_id: ClientId = Field(alias="salesforce.client.id")
    salesforce_client_secret: RequiredSecret = Field(alias="salesforce.client.secret")
    salesforce_api_version: Annotated[str, v(_salesforce_version)] = Field("60.0", alias="salesforce.api.version")
    salesforce_sobject: OptionalApiName = Field(None, alias="salesforce.sobject")
    salesforce_external_id_field: ApiName = Field("ERP_Id__c", alias="salesforce.external.id.field")

    @property
    def token_url(self) -> str:
        return self.salesforce_token_url or f"{self.salesforce_instance_url}/services/oauth2/token"


class HubSpotSinkConfig(VendorSinkModel):
    """HubSpot CRM v3: batch upsert by a unique id property, delete per record."""

    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = ("sinks.hubspot.HubSpotSink", "HubSpotSink")
    VENDOR: ClassVar[str] = "HubSpot"
    OBJECT_PROPERTY: ClassVar[str] = "hubspot.object.type"
    MAX_BATCH_RECORDS: ClassVar[int] = 100
    BATCH_LIMIT: ClassVar[str] = "HubSpot's batch upsert takes at most 100 inputs per request"

    hubspot_base_url: BaseUrl = Field("https://api.hubapi.com", alias="hubspot.base.url")
    hubspot_access_token: RequiredSecret = Field(alias="hubspot.access.token")
    hubspot_object_type: Annotated[str | None, v(_optional(_named(
        _PATH_NAME, "a HubSpot object type (letters, digits, '_' and '-')")))] = Field(
        None, alias="hubspot.object.type")
    hubspot_id_property: Annotated[str, v(_named(re.compile(r"[A-Za-z0-9_]+"), "a property name"))] = Field(
        "erp_id", alias="hubspot.id.property")


class NetSuiteSinkConfig(VendorSinkModel):
    """NetSuite REST Record Service: upsert and delete by external id, one record per request."""

    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = ("sinks.netsuite.NetSuiteSink", "NetSuiteSink")
    VENDOR: ClassVar[str] = "NetSuite"
    OBJECT_PROPERTY: ClassVar[str] = "netsuite.record.type"
    BATCH_LIMIT: ClassVar[str] = "NetSuite's record service takes one record per request"

    netsuite_base_url: BaseUrl = Field(alias="netsuite.base.url")
    netsuite_token_url: OptionalUrl = Field(None, alias="netsuite.token.url")
    netsuite_client_id: ClientId = Field(alias="netsuite.client.id")
    netsuite_client_secret: RequiredSecret = Field(alias="netsuite.client.secret")
    netsuite_record_type: OptionalApiName = Field(None, alias="netsuite.record.type")

    @property
    def token_url(self) -> str:
        return self.netsuite_token_url or f"{self.netsuite_base_url}/services/rest/auth/oauth2/v1/token"


class DynamicsSinkConfig(VendorSinkModel):
    """Dynamics 365 / Dataverse Web API: upsert and delete by alternate key, one record per request."""

    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = ("sinks.dynamics.DynamicsSink", "DynamicsSink")
    VENDOR: ClassVar[str] = "Dynamics"
    OBJECT_PROPERTY: ClassVar[str] = "dynamics.entity.set"
    BATCH_LIMIT: ClassVar[str] = "the sink sends one record per Dataverse request"

    dynamics_base_url: BaseUrl = Field(alias="dynamics.base.url")
    dynamics_token_url: BaseUrl = Field(alias="dynamics.token.url")
    dynamics_client_id: ClientId = Field(alias="dynamics.client.id")
    dynamics_client_secret: RequiredSecret = Field(alias="dynamics.client.secret")
    dynamics_scope: OptionalStr = Field(None, alias="dynamics.scope")
    dynamics_entity_set: OptionalApiName = Field(None, alias="dynamics.entity.set")
    dynamics_alternate_key: OptionalApiName = Field(None, alias="dynamics.alternate.key")

    @property
    def scope(self) -> str:
        return self.dynamics_scope or f"{self.dynamics_base_url}/.default"
