"""Canonical business entities: the versioned pydantic models mapped events are validated against.

Role: a mapping with ``mapper.entity`` produces events whose `data` is one of these entities. At load
time `check_select_list` compares the mapping's select list with the model: every column must be a
field (with a did-you-mean), every required field must be selected, and each column's SQL type must
fit the field's type (text for str, exact numbers for Decimal, integers for int, dates, timestamps,
booleans) -- a mismatch is a mapping error at the column, with the CAST that would fix it. Per event,
a single-table mapping then only checks what the types cannot say (`field_converter`: a required field
that is NULL in this row, a non-finite amount); `validate` (pydantic, per event) is for multi-table
mappings, whose values come from the source's own query, and returns the JSON-ready dict.
`SCHEMA_VERSION` is part of each event's ``dataschema``; `export_schemas` writes the JSON Schemas
(``cdc schema export``).

Versioning: a change that can break a consumer (a removed or retyped field, a new required field)
is a new version of the model; adding an optional field is not.

Failure story: `validate` raises `EntityError` (a `Permanent`) naming the entity, the field and the
value's problem; the mapper adds the record and business key.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Collection, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

from cdc.errors import Permanent
from mappers.errors import Problem, did_you_mean
from mappers.sqltypes import Dialect, SqlType

__all__ = ["ENTITIES", "Entity", "EntityError", "check_select_list", "entity_named", "export_schemas",
           "field_converter", "validate"]


def _plain(d: Decimal) -> str:
    return format(d, "f")


# Decimals are JSON strings in plain notation: no float rounding on the way, as with Debezium's
# decimal.handling.mode=string.
Amount = Annotated[Decimal, PlainSerializer(_plain, return_type=str, when_used="json")]


class EntityError(Permanent):
    """A mapped row that does not make a valid entity."""


class Entity(BaseModel):
    """Base of the canonical entities: strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SCHEMA_VERSION: ClassVar[int] = 1

    @classmethod
    def entity_name(cls) -> str:
        return cls.__name__.lower()

    @classmethod
    def dataschema(cls) -> str:
        return f"urn:erp-cdc:entity:{cls.entity_name()}:v{cls.SCHEMA_VERSION}"


class Customer(Entity):
    """A customer (account): who is billed."""

    id: str = Field(description="business key, e.g. the ERP customer number")
    name: str | None = None
    status: str | None = None
    active: bool | None = None
    country: str | None = None
    currency: str | None = None
    email: str | None = None
    phone: str | None = None
    vat_number: str | None = None
    credit_limit: Amount | None = None
    registered_on: date | None = None
    updated_at: datetime | None = None


class Contact(Entity):
    """A person at a customer."""

    id: str
    customer_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    active: bool | None = None
    updated_at: datetime | None = None


class Product(Entity):
    """A sellable item."""

    id: str = Field(description="item number / SKU")
    name: str | None = None
    description: str | None = None
    unit: str | None = None
    price: Amount | None = None
    currency: str | None = None
    active: bool | None = None
    updated_at: datetime | None = None


class OrderLine(Entity):
    line_number: int
    product_id: str | None = None
    description: str | None = None
    quantity: Amount | None = None
    unit_price: Amount | None = None
    amount: Amount | None = None
    status: str | None = None


class Order(Entity):
    """A customer order; `lines` come from a multi-table mapping (the order's lines as a JSON array)."""

    id: str
    customer_id: str | None = None
    status: str | None = None
    order_date: date | None = None
    currency: str | None = None
    net_amount: Amount | None = None
    note: str | None = None
    lines: list[OrderLine] = Field(default_factory=list)
    updated_at: datetime | None = None


class InvoiceLine(Entity):
    line_number: int
    product_id: str | None = None
    description: str | None = None
    quantity: Amount | None = None
    unit_price: Amount | None = None
    amount: Amount | None = None
    tax_amount: Amount | None = None


class Invoice(Entity):
    id: str
    customer_id: str | None = None
    order_id: str | None = None
    status: str | None = None
    invoice_date: date | None = None
    due_date: date | None = None
    currency: str | None = None
    net_amount: Amount | None = None
    tax_amount: Amount | None = None
    total_amount: Amount | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)
    updated_at: datetime | None = None


class Payment(Entity):
    id: str
    invoice_id: str | None = None
    customer_id: str | None = None
    amount: Amount | None = None
    currency: str | None = None
    paid_on: date | None = None
    method: str | None = None
    updated_at: datetime | None = None


class Shipment(Entity):
    id: str
    order_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None
    shipped_on: date | None = None
    delivered_on: date | None = None
    updated_at: datetime | None = None


ENTITIES: dict[str, type[Entity]] = {m.__name__: m for m in (Customer, Contact, Product, Order, Invoice, Payment,
                                                            Shipment)}
_NESTED = (OrderLine, InvoiceLine)


def entity_named(name: str) -> type[Entity] | None:
    """The entity class for a ``mapper.entity`` value (case-insensitive)."""
    for key, model in ENTITIES.items():
        if key.lower() == name.strip().lower():
            return model
    return None


def _base(annotation: Any) -> Any:
    """The field's type without Optional / Annotated."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _base(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base(args[0]) if len(args) == 1 else annotation
    return annotation


_FITS: dict[Any, tuple[tuple[str, ...], str]] = {
    str: (("text", "char"), "text"),
    Decimal: (("dec", "int"), "numeric"),
    int: (("int",), "integer"),
    date: (("date",), "date"),
    datetime: (("ts", "tstz"), "timestamp"),
    bool: (("bool",), "boolean"),
}


def check_select_list(model: type[Entity], columns: Sequence[tuple[str, SqlType | None, int, int]], dialect: Dialect,
                      file: str, json_arrays: Collection[str] = ()) -> list[Problem]:
    """Problems of a select list (name, type, line, col) against an entity; [] when it fits.

    A type of None is not known at load (a multi-table mapping without a live server): not checked.
    `json_arrays`: the columns a multi-table mapping builds as JSON arrays (nested lists)."""
    problems: list[Problem] = []
    fields = model.model_fields
    names = {n for n, _, _, _ in columns}
    first = columns[0] if columns else ("", None, 1, 1)
    for name, t, line, col in columns:
        if name.startswith("_"):
            continue
        f = fields.get(name)
        if f is None:
            problems.append(Problem(file, line, col, f"{model.__name__} has no field '{name}'"
                                    f"{did_you_mean(name, fields)}"))
            continue
        base = _base(f.annotation)
        fit = _FITS.get(base)
        if fit is None:
            if name not in json_arrays:
                problems.append(Problem(file, line, col, f"{model.__name__}.{name} is a nested list: build it "
                                        "in a multi-table mapping with json_agg(json_build_object(...)) "
                                        "(PostgreSQL) or JSON_ARRAYAGG(JSON_OBJECT(...)) (MySQL)"))
            continue
        if name in json_arrays:
            problems.append(Problem(file, line, col, f"{model.__name__}.{name} is {fit[1]}, not a nested list"))
            continue
        if t is None:
            continue
        kinds, wanted = fit
        ok = t.kind in kinds or t.kind == "null" or (dialect == "mysql" and base is bool and t.kind == "int")
        if not ok:
            problems.append(Problem(file, line, col, f"{model.__name__}.{name} is {wanted}, but the mapping gives "
                                    f"{t.show()} (CAST it to {wanted})"))
    for fname, f in fields.items():
        if f.is_required() and fname not in names:
            problems.append(Problem(file, first[2], first[3], f"{model.__name__} requires field '{fname}': add it "
                                    "to the select list"))
    return sorted(problems, key=lambda p: (p.line, p.col))


def _amount(d: Any) -> str:
    if d.__class__ is int:
        return str(d)
    if not d.is_finite():
        raise EntityError(f"an amount is {d}: Input should be a finite number")
    return format(d, "f")


def _bool01(v: Any) -> bool:
    if v == 0 or v == 1:
        return bool(v)
    raise EntityError(f"a boolean is {v!r}: Input should be a valid boolean (0 or 1)")


def field_converter(model: type[Entity], name: str, t: SqlType) -> tuple[Any, bool]:
    """How a select-list value of type `t` becomes the JSON value of field `name`, for a select list that
    `check_select_list` accepted: (a function, or None when orjson writes the value as pydantic would;
    whether the field is required, i.e. NULL is an error). Replaces per-event pydantic validation: the
    types are checked at load, only NULLs in required fields and values outside a type's range (a
    non-finite amount, a MySQL boolean other than 0/1) are checked per event."""
    f = model.model_fields[name]
    base = _base(f.annotation)
    conv: Any = None
    if base is Decimal and t.kind in ("dec", "int"):
        conv = _amount
    elif base is bool and t.kind == "int":
        conv = _bool01
    return conv, f.is_required()


def validate(model: type[Entity], data: dict[str, Any]) -> dict[str, Any]:
    """The event data as JSON-ready values, after validating it against the entity."""
    try:
        return model.model_validate(data).model_dump(mode="json", exclude_unset=True)
    except ValidationError as e:
        details = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors(include_input=False))
        raise EntityError(f"not a valid {model.__name__} v{model.SCHEMA_VERSION}: {details}") from None


def export_schemas(directory: Path) -> list[Path]:
    """Write one JSON Schema file per entity (``customer.v1.schema.json``); returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in ENTITIES.values():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = model.dataschema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path = directory / f"{model.entity_name()}.v{model.SCHEMA_VERSION}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def nested_model(model: type[Entity], name: str) -> type[Entity] | None:
    """The entity of a nested list field (Order.lines -> OrderLine), or None."""
    f = model.model_fields.get(name)
    if f is None or typing.get_origin(f.annotation) is not list:
        return None
    (item,) = typing.get_args(f.annotation)
    return item if isinstance(item, type) and issubclass(item, Entity) else None
