"""Default canonical-entity -> vendor object and field maps, and the one function that applies them.

Role: an HTTP sink with ``mapper.entity`` writes each canonical entity to a vendor object (the README's
object maps: Customer -> Account / companies / customer / accounts, ...) and renames each canonical field
to the vendor's field: the vendor's standard field where one exists (`VendorMaps.standard`), otherwise a
custom field named by the vendor's convention (`VendorMaps.custom`): Salesforce ``Vat_Number__c``,
HubSpot the canonical name itself (internal names are already lower snake case), NetSuite
``custentity_erp_vat_number`` / ``custitem_erp_*`` / ``custbody_erp_*`` (entity, item and transaction
records), Dynamics ``erp_vat_number``. Those custom fields must exist in the target: create them, or
rename with ``field.map.<canonical_field>=<vendor field>`` (an empty value drops the field).

Without ``mapper.entity`` (the vendor object is named explicitly), the mapping's select-list names are
the vendor's field names: they are sent as they are, apart from overrides.

What is never sent to a vendor by default:
- ``id``: the business key travels as the external id / alternate key / URL instead;
- nested lists (``Order.lines``, ``Invoice.lines``, any JSON array of a mapping without an entity): none of
  the four vendors takes child records inside the parent's upsert on the endpoints used here (Salesforce
  sObject Collections, HubSpot batch upsert, NetSuite record PUT, Dataverse PATCH) -- they are dropped.
  The generic HTTP sink sends them. A ``field.map.lines=<name>`` override sends them anyway.

Vendor value conversions (`hubspot_value`, `salesforce_value`): HubSpot stores every property as text,
so values are sent as strings (booleans ``true``/``false``, null as ``""``, which clears the property);
Salesforce takes dates and datetimes as ISO 8601 strings with at most millisecond precision, so longer
fractions are cut to milliseconds. Other values are sent as the mapping made them (decimals are JSON
strings in plain notation, see `mappers.entities`).

Failure story: nothing here fails; an unknown vendor field is the vendor's validation error for that
record (rejected, dead-lettered), and the docstring above says which custom fields to create.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["DYNAMICS", "HUBSPOT", "NETSUITE", "SALESFORCE", "FieldMapper", "ObjectDefault", "VendorMaps",
           "hubspot_value", "salesforce_value"]

# Fields a vendor never receives by default (see the module docstring).
_NEVER_SENT = frozenset({"id", "lines"})


@dataclass(frozen=True, slots=True)
class ObjectDefault:
    """The vendor object a canonical entity goes to, and the vendor's key field for it where the
    vendor's API names one per object (Dynamics alternate keys)."""

    name: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class VendorMaps:
    objects: Mapping[str, ObjectDefault]
    standard: Mapping[str, Mapping[str, str]]  # entity -> canonical field -> vendor's standard field
    custom: Callable[[str, str], str]          # (vendor object, canonical field) -> custom field name

    def object_for(self, entity: str) -> ObjectDefault:
        return self.objects[entity]


def _title_custom(_obj: str, name: str) -> str:
    return "_".join(part.capitalize() for part in name.split("_")) + "__c"


SALESFORCE = VendorMaps(
    objects={"Customer": ObjectDefault("Account"), "Contact": ObjectDefault("Contact"),
             "Product": ObjectDefault("Product2"), "Order": ObjectDefault("Order"),
             "Invoice": ObjectDefault("Invoice__c"), "Payment": ObjectDefault("Payment__c"),
             "Shipment": ObjectDefault("Shipment__c")},
    standard={
        "Customer": {"name": "Name", "phone": "Phone", "country": "BillingCountry"},
        "Contact": {"first_name": "FirstName", "last_name": "LastName", "email": "Email", "phone": "Phone",
                    "title": "Title"},
        "Product": {"name": "Name", "description": "Description", "active": "IsActive",
                    "unit": "QuantityUnitOfMeasure"},
        "Order": {"order_date": "EffectiveDate", "note": "Description"},
    },
    custom=_title_custom,
)

HUBSPOT = VendorMaps(
    objects={"Customer": ObjectDefault("companies"), "Contact": ObjectDefault("contacts"),
             "Product": ObjectDefault("products"), "Order": ObjectDefault("deals"),
             "Invoice": ObjectDefault("invoices"), "Payment": ObjectDefault("commerce_payments"),
             "Shipment": ObjectDefault("p_shipments")},
    standard={
        "Contact": {"first_name": "firstname", "last_name": "lastname", "title": "jobtitle"},
        "Order": {"net_amount": "amount", "currency": "deal_currency_code", "note": "description"},
    },
    custom=lambda _obj, name: name,
)

_NETSUITE_PREFIX = {"customer": "custentity", "contact": "custentity", "inventoryItem": "custitem"}

NETSUITE = VendorMaps(
    objects={"Customer": ObjectDefault("customer"), "Contact": ObjectDefault("contact"),
             "Product": ObjectDefault("inventoryItem"), "Order": ObjectDefault("salesOrder"),
             "Invoice": ObjectDefault("invoice"), "Payment": ObjectDefault("customerPayment"),
             "Shipment": ObjectDefault("itemFulfillment")},
    standard={
        "Customer": {"name": "companyName", "email": "email", "phone": "phone", "vat_number": "vatRegNumber",
                     "credit_limit": "creditLimit"},
        "Contact": {"first_name": "firstName", "last_name": "lastName", "email": "email", "phone": "phone",
                    "title": "title"},
        "Product": {"name": "itemId", "description": "salesDescription"},
        "Order": {"order_date": "tranDate", "note": "memo"},
        "Invoice": {"invoice_date": "tranDate", "due_date": "dueDate"},
        "Payment": {"paid_on": "tranDate", "amount": "payment"},
        "Shipment": {"shipped_on": "tranDate"},
    },
    # Custom field ids carry the record family's prefix; transactions use body fields.
    custom=lambda obj, name: f"{_NETSUITE_PREFIX.get(obj, 'custbody')}_erp_{name}",
)

DYNAMICS = VendorMaps(
    objects={"Customer": ObjectDefault("accounts", "accountnumber"), "Contact": ObjectDefault("contacts", "erp_id"),
             "Product": ObjectDefault("products", "productnumber"), "Order": ObjectDefault("salesorders", "erp_id"),
             "Invoice": ObjectDefault("invoices", "erp_id"), "Payment": ObjectDefault("erp_payments", "erp_id"),
             "Shipment": ObjectDefault("erp_shipments", "erp_id")},
    standard={
        "Customer": {"name": "name", "email": "emailaddress1", "phone": "telephone1", "country": "address1_country",
                     "credit_limit": "creditlimit"},
        "Contact": {"first_name": "firstname", "last_name": "lastname", "email": "emailaddress1",
                    "phone": "telephone1", "title": "jobtitle"},
        "Product": {"name": "name", "description": "description", "price": "price"},
        "Order": {"note": "description"},
        "Invoice": {"due_date": "duedate"},
    },
    custom=lambda _obj, name: f"erp_{name}",
)


def hubspot_value(value: Any) -> str:
    """A property value as HubSpot stores it: text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


_LONG_FRACTION = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\d+(Z|[+-]\d\d:?\d\d)?")


def salesforce_value(value: Any) -> Any:
    """A value as Salesforce takes it: ISO datetimes with at most millisecond precision."""
    if isinstance(value, str) and len(value) > 23 and value[10:11] == "T":
        m = _LONG_FRACTION.fullmatch(value)
        if m is not None:
            return m.group(1) + (m.group(2) or "")
    return value


@dataclass(slots=True)
class FieldMapper:
    """Renames (and converts) one event's data for a target, memoizing each field's target name.

    `standard` and `custom` give the default name of a canonical field (None `custom`: the name itself);
    `overrides` are the ``field.map.*`` properties ("" drops the field); `drop` names fields not sent by
    default; `keep_lists` whether nested lists are sent without an override.
    """

    standard: Mapping[str, str] = field(default_factory=dict)
    custom: Callable[[str], str] | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    keep_lists: bool = True
    convert: Callable[[Any], Any] | None = None
    _names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_vendor(cls, maps: VendorMaps, entity: str | None, obj: str, overrides: Mapping[str, str],
                   convert: Callable[[Any], Any] | None = None) -> FieldMapper:
        """The mapper of a vendor sink writing `entity` (None: select-list names are vendor names) to `obj`."""
        if entity is None:
            return cls(overrides=overrides, drop=frozenset({"id"}), keep_lists=False, convert=convert)
        return cls(standard=maps.standard.get(entity, {}), custom=lambda name: maps.custom(obj, name),
                   overrides=overrides, drop=_NEVER_SENT, keep_lists=False, convert=convert)

    def _name(self, canonical: str) -> str:
        name = self.overrides.get(canonical)
        if name is None:
            if canonical in self.drop:
                name = ""
            elif canonical in self.standard:
                name = self.standard[canonical]
            else:
                name = self.custom(canonical) if self.custom is not None else canonical
        self._names[canonical] = name
        return name

    def apply(self, data: Mapping[str, Any] | None) -> dict[str, Any]:
        """The vendor's fields for an event's data (None: no fields)."""
        out: dict[str, Any] = {}
        if not data:
            return out
        names, convert = self._names, self.convert
        for key, value in data.items():
            name = names.get(key)
            if name is None:
                name = self._name(key)
            if not name or (not self.keep_lists and isinstance(value, list) and key not in self.overrides):
                continue
            out[name] = convert(value) if convert is not None else value
        return out
