"""`conveyor sandbox`: the marketplace, PIM, supplier and AI simulators on loopback, until Ctrl-C."""

from __future__ import annotations

import signal
import threading

import click


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="The first simulator's port; the next ones take the ports after it. Default: free ports.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the injected faults.")
@click.option(
    "--error-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of requests answered 5xx."
)
@click.option(
    "--throttle-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests answered 429 while the real limits still have room.",
)
@click.option(
    "--timeout-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests held past --timeout-delay.",
)
@click.option(
    "--timeout-delay",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds a timed-out request is held before it is dropped.",
)
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, help="Most random extra latency (s).")
def sandbox(
    names: tuple[str, ...],
    host: str,
    port: int,
    seed: int,
    error_rate: float,
    throttle_rate: float,
    timeout_rate: float,
    timeout_delay: float,
    latency: float,
) -> None:
    """Run the named simulators and print each one's base URL; SIGINT or SIGTERM stops them.

    NAME is one of: akeneo, amazon, ebay, jumpseller, openai, promidata,
    seller_api, shopify. They reproduce the real APIs' paths, errors and rate
    limits, with the faults asked for; point a connector (or curl) at them.
    """
    from ..sandbox import SANDBOXES, RunningSandbox, serve
    from ..sandbox.faults import FaultConfig

    unknown = sorted(set(names) - set(SANDBOXES))
    if unknown:
        raise click.BadParameter(
            f"unknown simulator {', '.join(unknown)}; choose from {', '.join(sorted(SANDBOXES))}",
            param_hint="NAME",
        )
    faults = FaultConfig(
        seed=seed,
        latency=(0.0, latency),
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        timeout_rate=timeout_rate,
        timeout_delay=timeout_delay,
    )

    def ready(running: RunningSandbox) -> None:
        click.echo(f"{running.sandbox.name} {running.api_url}")

    # Handlers of its own rather than KeyboardInterrupt: SIGTERM (systemd, docker stop) stops it
    # too, and so does SIGINT when the shell started it with SIGINT ignored (a background job).
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    serve(names, host, port, faults=faults, on_ready=ready, stop=stop)
