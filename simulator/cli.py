"""``pulse simulate``: run the simulator in the foreground and print the env vars that use it."""

from __future__ import annotations

import shlex
import sys

import click

from simulator.faults import parse_faults
from simulator.hosts import FAULT_HOST_NAMES


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", "-p", default=8765, show_default=True, type=int, help="Port (0: any free port).")
@click.option("--packages", "-n", default=250, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Number of packages in the simulated world.")
@click.option("--seed", "-s", default=1, show_default=True, type=int, help="World seed (same seed, same data).")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Added latency per upstream request (asyncio.sleep, never blocking).")
@click.option("--faults", default="", help="Fault spec, e.g. '5xx=0.05,timeout=0.01,slow=0.05:2000' "
              "(grammar: simulator/README.md).")
@click.option("--now", default=None, help="Simulated 'now' (ISO 8601, default 2026-11-01T00:00:00Z).")
def simulate(host: str, port: int, packages: int, seed: int, latency_ms: float, faults: str,
             now: str | None) -> None:
    """Serve fake GitHub (REST + GraphQL), PyPI, the other repository hosts and djangopackages API v4 on one port."""
    from simulator.server import env_for, serve_forever

    try:
        spec = parse_faults(faults, FAULT_HOST_NAMES)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from exc

    now_dt = None
    if now:
        from datetime import UTC, datetime

        try:
            now_dt = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--now") from exc
        if now_dt.tzinfo is None:
            now_dt = now_dt.replace(tzinfo=UTC)

    def ready(url: str) -> None:
        env = env_for(url)
        click.echo(f"# Package Pulse simulator: {packages} packages, seed {seed}, at {url}")
        click.echo("# Point `pulse refresh` at it with:")
        for k, v in env.items():
            click.echo(f"export {k}={shlex.quote(v)}")
        click.echo("# (GraphQL needs a token: any value works, e.g. export GITHUB_TOKEN=sim-token)")
        click.echo(f"# Stats: {url}/_sim/stats  -  Ctrl-C to stop", err=False)
        sys.stdout.flush()

    serve_forever(packages=packages, seed=seed, latency_ms=latency_ms, faults=spec, port=port, host=host,
                  on_ready=ready, now=now_dt)


if __name__ == "__main__":  # pragma: no cover
    simulate()
