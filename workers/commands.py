"""``flask worker``, ``flask worker-check`` and ``flask sweep``: registered through the ``flask.commands``
entry point group (pyproject.toml), so the app never imports the worker code that imports it."""

import click
from flask import current_app
from flask.cli import with_appcontext

from workers import sweeper, worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
def worker_command(burst):
    """Run an RQ worker on the sync, writes and mail queues (needs REDIS_URL); see workers/worker.py."""
    worker.main(burst=burst)


@click.command("worker-check")
@click.option("--max-age", default=60.0, show_default=True, help="Seconds since the worker's last heartbeat.")
@with_appcontext
def worker_check_command(max_age):
    """Health check: exit 0 if an RQ worker on this host heartbeated within --max-age seconds, else 1."""
    healthy, message = worker.check(current_app._get_current_object(), max_age)
    click.echo(message)
    raise SystemExit(0 if healthy else 1)


@click.command("sweep")
@click.option("--once", is_flag=True, help="Sweep once and exit instead of every SWEEP_INTERVAL_SECONDS.")
@with_appcontext
def sweep_command(once):
    """Queue again every due job Redis does not hold (syncs, outbox deliveries, health probes, domain
    checks)."""
    counts = sweeper.main(current_app._get_current_object(), once=once)
    if counts is not None:
        click.echo(" ".join(f"{kind}={count}" for kind, count in counts.items()))
