"""What every connector model shares: value coercion, the base model, and problem messages.

Role: connector models are pydantic models whose fields carry the Debezium / Kafka Connect property
names as aliases. `ConnectorModel.validate_properties` takes a flat property mapping (providers already
resolved) and returns the model or the complete list of problems: unknown properties (with a
did-you-mean), recognised-but-unsupported properties, values that do not parse, cross-property
conflicts. Values arrive the way Kafka Connect JSON carries them: usually strings (``"5432"``,
``"true"``), sometimes native JSON numbers and booleans; both are accepted, and strings are trimmed as
Kafka's ConfigDef trims them (secrets excepted).

Failure story: every problem is a sentence of the form ``property 'snapshot.mode' = 'sometimes' is not
one of: ...``; values of secret properties are shown as ``'********'``. Validators raise `ValueError`
with only the tail of that sentence; `_problems_from` composes the sentence from pydantic's error, so
no pydantic wording (nor any input) reaches the user.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import PurePath
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from cdc.config.secrets import MASK, SecretsFilter, is_secret_property, mask_value

JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"

# Kafka's legal topic characters (also Debezium's rule for topic.prefix).
TOPIC_CHARS = re.compile(r"[a-zA-Z0-9._\-]+")


# --- showing values in messages ---------------------------------------------------------------------


def show(prop: str, value: Any) -> str:
    """A value as quoted in a problem: strings in single quotes, secrets masked, JSON for the rest."""
    if isinstance(value, SecretStr) or (is_secret_property(prop) and value not in (None, "")):
        return f"'{MASK}'"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, tuple | list | frozenset | set):
        return "'" + ",".join(str(v) for v in value) + "'"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return f"'{value}'"


# --- coercion (validators raise ValueError with the tail of the problem sentence) ------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise ValueError("must be a string, number or boolean")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value.strip())
    raise ValueError("is not an integer")


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("is not a boolean (true or false)")


def to_str(value: Any) -> str:
    return _text(value)


def to_nonempty_str(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def to_optional_str(value: Any) -> str | None:
    text = _text(value)
    return text or None


def table_name(container: str, example: str) -> Callable[[Any], str | None]:
    """A check of Debezium's two-part table names (``<container>.table``, e.g. the signal table): unquoted
    names, as the catalog spells them."""
    def check(value: Any) -> str | None:
        text = to_optional_str(value)
        if text is None:
            return None
        head, dot, table = text.partition(".")
        if not dot or not head or not table or "." in table:
            raise ValueError(f"is not a {container}.table name (e.g. {example})")
        return text
    return check


def to_secret(value: Any) -> SecretStr | None:
    """A secret as SecretStr (not trimmed), registered with the log filter as it is loaded."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
    elif isinstance(value, str):
        secret = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        secret = str(value)
    else:
        raise ValueError("must be a string")
    if secret == "":
        return None
    SecretsFilter.register(secret)
    return SecretStr(secret)


def int_between(low: int | None = None, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        n = to_int(value)
        if low is not None and high is not None and not low <= n <= high:
            raise ValueError(f"must be between {low} and {high}")
        if low is not None and n < low:
            raise ValueError(f"must be at least {low}")
        if high is not None and n > high:
            raise ValueError(f"must be at most {high}")
        return n

    return check


def only_one(reason: str) -> Callable[[Any], int]:
    """For tasks.max / snapshot.max.threads: the value 1 is all this bridge runs."""

    def check(value: Any) -> int:
        n = to_int(value)
        if n != 1:
            raise ValueError(f"is not supported by this bridge: {reason}")
        return n

    return check


def enum_of(
    *accepted: str,
    aliases: Mapping[str, str] | None = None,
    unsupported: Mapping[str, str] | None = None,
    unsupported_reason: str | None = None,
) -> Callable[[Any], str]:
    """Case-insensitive choice among `accepted` (listed in that order in the message).

    `aliases` map accepted spellings onto the canonical value stored; `unsupported` names values the
    upstream tool knows but this bridge does not run (value -> optional specific reason).
    """
    aliases = dict(aliases or {})
    unsupported = dict(unsupported or {})

    def check(value: Any) -> str:
        text = _text(value).lower()
        if text in accepted:
            return aliases.get(text, text)
        if text in unsupported:
            reason = unsupported[text] or unsupported_reason or f"supported: {', '.join(accepted)}"
            raise ValueError(f"is not supported by this bridge ({reason})")
        raise ValueError(f"is not one of: {', '.join(accepted)}")

    return check


def split_list(value: str) -> tuple[str, ...]:
    """Split a comma-separated list like Debezium's RegExSplitter: ``\\,`` is a literal comma,
    entries are trimmed, empty entries dropped."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if c == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return tuple(p.strip().replace("\\,", ",") for p in parts if p.strip())


def join_list(items: Iterable[str]) -> str:
    """The inverse of `split_list`."""
    return ",".join(item.replace(",", "\\,") for item in items)


def _check_regex(pattern: str, what: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what}: {exc}") from None
    return pattern


def to_regex_list(value: Any) -> tuple[str, ...]:
    items = split_list(_text(value))
    for item in items:
        _check_regex(item, f"has an invalid regular expression '{item}'")
    return items


def to_regex(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return _check_regex(text, "is not a valid regular expression")


def to_topic_name(value: Any) -> str:
    text = _text(value)
    if not TOPIC_CHARS.fullmatch(text) or text in (".", "..") or len(text) > 249:
        raise ValueError(
            "is not a valid topic name (letters, digits, '.', '_' and '-', at most 249 characters)"
        )
    return text


def v(check: Callable[[Any], Any]) -> BeforeValidator:
    """Shorthand: run `check` on the raw value before pydantic's own (then trivial) validation."""
    return BeforeValidator(check)


def json_converter_only(value: Any) -> str:
    """Only Kafka's JsonConverter (also by Kafka Connect's plugin aliases JsonConverter / Json)."""
    text = _text(value)
    if text not in (JSON_CONVERTER, "JsonConverter", "Json"):
        raise ValueError(f"is not supported by this bridge (only {JSON_CONVERTER})")
    return JSON_CONVERTER


def schemas_disabled(prop: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if to_bool(value):
            raise ValueError(
                f"is not supported by this bridge: schemas in the JSON are not supported; set {prop}=false"
            )
        return False

    return check


# Field types for the common shapes.
Bool = Annotated[bool, v(to_bool)]
OptionalStr = Annotated[str | None, v(to_optional_str)]
Secret = Annotated[SecretStr | None, v(to_secret)]
PositiveInt = Annotated[int, v(int_between(1))]
RegexList = Annotated[tuple[str, ...], v(to_regex_list)]


# --- the base model ---------------------------------------------------------------------------------


class ConnectorModel(BaseModel):
    """Base of every connector model: Kafka Connect's common properties and the validation driver.

    Subclasses declare `CONNECTOR_CLASSES` (canonical class name first, then accepted aliases),
    `KIND`, and `UNSUPPORTED` / `UNSUPPORTED_PREFIXES` (Debezium or Kafka Connect properties that are
    recognised but not supported here, each with a reason or "").
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True, validate_default=False)

    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""
    UNSUPPORTED: ClassVar[Mapping[str, str]] = {}
    # Properties accepted only at their default value (given as text) until the feature lands: a
    # different value is refused with the reason, never silently ignored.
    ONLY_DEFAULT: ClassVar[Mapping[str, tuple[str, str]]] = {}
    UNSUPPORTED_PREFIXES: ClassVar[Mapping[str, str]] = {}

    name: Annotated[str, v(to_nonempty_str)] = Field(alias="name")
    connector_class: Annotated[str, v(to_nonempty_str)] = Field(alias="connector.class")
    tasks_max: Annotated[int, v(only_one("it runs one task per connector; set tasks.max=1"))] = Field(
        1, alias="tasks.max")
    key_converter: Annotated[str, v(json_converter_only)] = Field(
        JSON_CONVERTER, alias="key.converter")
    value_converter: Annotated[str, v(json_converter_only)] = Field(
        JSON_CONVERTER, alias="value.converter")
    key_converter_schemas_enable: Annotated[
        bool, v(schemas_disabled("key.converter.schemas.enable"))
    ] = Field(False, alias="key.converter.schemas.enable")
    value_converter_schemas_enable: Annotated[
        bool, v(schemas_disabled("value.converter.schemas.enable"))
    ] = Field(False, alias="value.converter.schemas.enable")

    # -- validation driver --

    @classmethod
    def property_names(cls) -> list[str]:
        """The supported property names, in declaration order."""
        return [f.alias or n for n, f in cls.model_fields.items()]

    @classmethod
    def unsupported_reason(cls, prop: str) -> str | None:
        """Why a recognised property is not supported ("" when no specific reason); None if not one."""
        if prop in cls.UNSUPPORTED:
            return cls.UNSUPPORTED[prop]
        for prefix, reason in cls.UNSUPPORTED_PREFIXES.items():
            if prop.startswith(prefix):
                return reason
        return None

    @classmethod
    def validate_properties(
        cls, props: Mapping[str, Any], unresolved: Collection[str] = ()
    ) -> tuple[Self | None, list[str]]:
        """The model for a flat, provider-resolved property mapping, or every problem found.

        `unresolved` names properties left out because a provider reference in them failed (already
        reported): they are not reported again as missing.
        """
        problems: list[str] = []
        known = set(cls.property_names())
        data: dict[str, Any] = {}
        for prop, value in props.items():
            if prop in known:
                if value is None:
                    continue  # JSON null: not set, the default applies
                if isinstance(value, Mapping | list):
                    problems.append(f"property '{prop}' must be a string, number or boolean, not a JSON "
                                    f"{'object' if isinstance(value, Mapping) else 'array'}")
                    continue
                data[prop] = value
                continue
            reason = cls.unsupported_reason(prop)
            if reason is not None:
                problems.append(f"property '{prop}' is not supported by this bridge"
                                + (f": {reason}" if reason else ""))
                continue
            candidates = sorted(known | set(cls.UNSUPPORTED))
            close = difflib.get_close_matches(prop, candidates, n=1, cutoff=0.75)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown property '{prop}'{hint}")
        for prop, (default, why) in cls.ONLY_DEFAULT.items():
            value = data.get(prop)
            if value is not None and str(value).strip().lower() != default:
                problems.append(f"property '{prop}' = '{value}' is not supported yet (only '{default}'): {why}")
        problems.extend(cls._check_combinations(data))
        model: Self | None = None
        try:
            model = cls.model_validate(data)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, data, unresolved))
        if problems:
            return None, [SecretsFilter.redact(p) for p in problems]
        return model, []

    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        """Problems with which properties are set together (before values are parsed)."""
        return []

    # -- output --

    def masked_dump(self) -> dict[str, Any]:
        """Property names -> values as configured (defaults included), secrets masked."""
        out: dict[str, Any] = {}
        for attr, field in type(self).model_fields.items():
            prop = field.alias or attr
            value = getattr(self, attr)
            if isinstance(value, tuple):
                value = join_list(value) if value else None
            elif isinstance(value, PurePath):
                value = str(value)
            out[prop] = mask_value(prop, value)
        return out


def _problems_from(exc: ValidationError, data: Mapping[str, Any], unresolved: Collection[str]) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_input=False):
        loc = err["loc"]
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        detail = str(cause) if isinstance(cause, ValueError) else err["msg"]
        if not loc:
            problems.append(detail)
            continue
        prop = str(loc[0])
        if err["type"] == "missing":
            if prop in unresolved:
                continue
            problems.append(f"required property '{prop}' is missing")
        else:
            problems.append(f"property '{prop}' = {show(prop, data.get(prop))} {detail}")
    return problems


# -- shared by the source connectors: operation codes and Debezium's include/exclude filters --

OPERATIONS = ("c", "u", "d", "t", "r")


def skipped_operations_of(value: Any) -> frozenset[str]:
    items = [item.strip().lower() for item in to_str(value).split(",") if item.strip()]
    if items == ["none"] or not items:
        return frozenset()
    if "none" in items:
        raise ValueError("combines 'none' with operations")
    bad = [item for item in items if item not in OPERATIONS]
    if bad:
        raise ValueError(f"has unknown operation '{bad[0]}' (one of: {', '.join(OPERATIONS)}, or none)")
    return frozenset(items)


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def passes_filters(identifier: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    if include:
        return any(p.fullmatch(identifier) for p in _compiled(include))
    if exclude:
        return not any(p.fullmatch(identifier) for p in _compiled(exclude))
    return True
