"""``flask worker`` and ``flask sweep``: registered through the ``flask.commands`` entry point group
(pyproject.toml), so the app never imports the worker code that imports it."""

import click
from flask import current_app
from flask.cli import with_appcontext

from workers import sweeper, worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
def worker_command(burst):
    """Run an RQ worker on the sync, writes and mail queues (needs REDIS_URL); see workers/worker.py."""
    worker.main(burst=burst)


@click.command("sweep")
@click.option("--once", is_flag=True, help="Sweep once and exit instead of every SWEEP_INTERVAL_SECONDS.")
@with_appcontext
def sweep_command(once):
    """Queue again every due job Redis does not hold (syncs, outbox deliveries, health probes, domain
    checks)."""
    counts = sweeper.main(current_app._get_current_object(), once=once)
    if counts is not None:
        click.echo(" ".join(f"{kind}={count}" for kind, count in counts.items()))
