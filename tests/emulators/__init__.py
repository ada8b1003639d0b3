"""Cloud-API emulators (aiohttp, loopback) with an inspectable ledger and run-time faults; see README.md.

    with start_emulator("salesforce", order_field="version") as emu:
        ...  # point a sink at emu.url with emu.credentials
        emu.wait_for(lambda e: len(e.records("Account")) == 10)

Faults (`emu.faults`, `emu.outage(s)`, `emu.expire_tokens()`, `emu.reject(field, value)`) are described in
core.py; each vendor module documents its own error bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.emulators.core import Emulator, Faults, Vendor, Write
from tests.emulators.dynamics import Dynamics
from tests.emulators.generic import Generic
from tests.emulators.hubspot import HubSpot
from tests.emulators.netsuite import NetSuite
from tests.emulators.salesforce import Salesforce

KINDS: dict[str, type[Vendor]] = {v.kind: v for v in (Generic, Salesforce, HubSpot, NetSuite, Dynamics)}

__all__ = ["KINDS", "Emulator", "Faults", "Write", "create_emulator", "start_emulator"]


def create_emulator(
    kind: str,
    *,
    order_field: str | None = "version",
    auth: str | None = None,
    seed: int = 0,
    token_ttl_s: float = 3600.0,
    tokens: Sequence[str] = (),
    client_id: str = "emulator-client",
    client_secret: str = "emulator-secret",
    host: str = "127.0.0.1",
    port: int = 0,
) -> Emulator:
    """An emulator of `kind` (generic, salesforce, hubspot, netsuite, dynamics), not yet listening."""
    try:
        vendor = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown emulator kind {kind!r}; one of {sorted(KINDS)}") from None
    return Emulator(
        vendor,
        order_field=order_field,
        auth=auth,
        seed=seed,
        token_ttl_s=token_ttl_s,
        tokens=tuple(tokens),
        client_id=client_id,
        client_secret=client_secret,
        host=host,
        port=port,
    )


def start_emulator(kind: str, **options: Any) -> Emulator:
    """Start an emulator (`create_emulator`'s arguments) on its own event loop in a daemon thread; use as
    `with start_emulator(...) as emu:` (or call `emu.close()`). `auth` picks the generic emulator's mode:
    none, bearer, basic, apikey, oauth2."""
    return create_emulator(kind, **options).start()
