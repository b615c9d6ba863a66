"""`python -m conveyor.sandbox jumpseller shopify --port 0`: run simulators on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import SANDBOXES, serve
from .faults import FaultConfig
from .server import RunningSandbox


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m conveyor.sandbox", description=__doc__)
    parser.add_argument("names", nargs="+", choices=sorted(SANDBOXES), metavar="NAME")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="first port; 0 picks free ports")
    parser.add_argument("--seed", type=int, default=0, help="fault injection seed")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 5xx")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="share answered 429")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="share held past --timeout-delay")
    parser.add_argument("--timeout-delay", type=float, default=30.0)
    parser.add_argument("--latency", type=float, default=0.0, help="maximum random extra latency (s)")
    args = parser.parse_args(argv)
    faults = FaultConfig(
        seed=args.seed,
        latency=(0.0, args.latency),
        error_rate=args.error_rate,
        throttle_rate=args.throttle_rate,
        timeout_rate=args.timeout_rate,
        timeout_delay=args.timeout_delay,
    )

    def ready(running: RunningSandbox) -> None:
        print(f"{running.sandbox.name} {running.api_url}", flush=True)

    serve(args.names, args.host, args.port, faults=faults, on_ready=ready)


if __name__ == "__main__":
    main()
