"""``python -m opsconsole.sandbox serve control-plane|runner [--port N]``
and ``python -m opsconsole.sandbox selfcheck hdm --assert-startup [--env-file PATH]``

The sandbox's stand-ins for ``uvicorn domain_expansion.main:app`` and
``uvicorn runner.main:app``: settings come from the environment and are
validated before any port is bound, so a bad configuration fails immediately
with exit status 78 (EX_CONFIG) and a ValidationError naming each bad
variable; a good one serves in the foreground until the process is stopped.

Run this way, each service has its own in-memory job store (the real ones
share Postgres); inside :class:`opsconsole.sandbox.Sandbox` they share one.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EX_USAGE = 64
EX_CONFIG = 78
DEFAULT_PORTS = {"control-plane": 8000, "runner": 8010}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opsconsole.sandbox",
        description="Run one opsconsole sandbox service in the foreground.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="validate the service's settings from the environment, then serve it"
    )
    serve.add_argument("service", choices=sorted(DEFAULT_PORTS))
    serve.add_argument(
        "--port", type=int, help="port on 127.0.0.1 (default: $PORT, else 8000 / 8010)"
    )
    selfcheck = commands.add_parser(
        "selfcheck",
        help="HDM's startup self-check: exit 0, or 78/70/71/69 (see hdm_selfcheck.py)",
        add_help=False,
    )
    selfcheck.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "selfcheck":
        from .hdm_selfcheck import main as selfcheck_main

        return selfcheck_main(args.rest)

    # pydantic costs ~0.2 s to import: only the serve command pays for it.
    from pydantic import ValidationError

    from .v2_settings import ControlPlaneSettings, RunnerSettings, describe_settings_error

    try:
        settings = (
            ControlPlaneSettings.from_env(os.environ)
            if args.service == "control-plane"
            else RunnerSettings.from_env(os.environ)
        )
    except ValidationError as exc:
        print(describe_settings_error(exc, args.service), file=sys.stderr)
        return EX_CONFIG

    port = args.port
    if port is None:
        raw = os.environ.get("PORT", "").strip()
        if raw and not raw.isdigit():
            print(f"{args.service}: PORT must be a port number", file=sys.stderr)
            return EX_USAGE
        port = int(raw) if raw else DEFAULT_PORTS[args.service]

    # The web stack loads only once the settings are known to be good.
    import uvicorn

    from .service import FaultSwitches
    from .v2 import JobStore, create_control_plane_app, create_runner_app

    if isinstance(settings, ControlPlaneSettings):
        app = create_control_plane_app(settings, JobStore(), FaultSwitches())
    else:
        app = create_runner_app(settings, JobStore(), FaultSwitches())
    uvicorn.run(app, host="127.0.0.1", port=port, http="h11", ws="none", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
