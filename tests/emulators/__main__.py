"""Run one emulator in the foreground: `python -m tests.emulators KIND --port N [--order-field version]
[--token T ...] [--auth MODE] [--seed S]`. Prints `READY <url>` (then `CREDENTIALS <json>`) once listening,
serves `GET /_ledger[?records=1]` and `POST /_faults` besides the vendor's API, stops on SIGINT/SIGTERM.
Faults behave as described in core.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal

from tests.emulators import KINDS, create_emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators", description=__doc__)
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--order-field", default="version", help="data field carrying the per-key version ('' = none)")
    parser.add_argument("--auth", default=None, help="generic only: none, bearer, basic, apikey, oauth2")
    parser.add_argument("--token", action="append", default=[], help="static token(s) accepted (hubspot, generic)")
    parser.add_argument("--client-id", default="emulator-client")
    parser.add_argument("--client-secret", default="emulator-secret")
    parser.add_argument("--token-ttl-s", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    emu = create_emulator(
        args.kind,
        order_field=args.order_field or None,
        auth=args.auth,
        seed=args.seed,
        token_ttl_s=args.token_ttl_s,
        tokens=args.token,
        client_id=args.client_id,
        client_secret=args.client_secret,
        host=args.host,
        port=args.port,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await emu.serve_forever(stop)

    gc.set_threshold(50_000, 20, 100)  # the ledger allocates many small objects: fewer young-generation passes
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
