"""``flask`` commands: the embedded demo's, and the background job processes (`make worker` runs both)."""

import os

import click
from flask import Flask

from app import demo, demo_calendar
from app.extensions import db
from app.sync import services as sync


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo tenant (once), connect its rep's calendar, and print where to sign in."""
        seeded = demo.seed_demo()
        db.session.commit()
        try:
            calendar_note = demo.connect_demo_calendar(seeded.rep)
            db.session.commit()
        except Exception as error:  # the demo still runs without its calendar; say why
            db.session.rollback()
            calendar_note = f"NOT connected ({error}); is Radicale running? `flask demo-calendar start`"
        from app.pages.links import page_url
        from app.pages.services import page_path
        from app.web.links import app_host_url, external_url

        # Links made outside a request take their port from PUBLIC_PORT (`make run` sets it); the demo
        # serves on PORT.
        if not app.config["PUBLIC_PORT"]:
            app.config["PUBLIC_PORT"] = int(os.environ.get("PORT", "8000"))
        click.echo("")
        click.echo("Termin demo " + ("created" if seeded.created else "already there"))
        click.echo(f"  App:          {app_host_url('/login')}")
        click.echo(f"  Admin:        {demo.ADMIN_EMAIL} / {demo.ADMIN_PASSWORD}")
        click.echo(f"  Rep (Sales):  {demo.REP_EMAIL} / {demo.REP_PASSWORD}")
        share_link, on_app_host = page_url(seeded.page), app_host_url(page_path(seeded.page))
        click.echo(f"  Rep's page:   {share_link}")
        if share_link != on_app_host:
            click.echo(f"                ({on_app_host} on the app host sends visitors there)")
        click.echo(f"  Demo domain:  {external_url(seeded.domain.hostname, '/robots.txt')}")
        click.echo(f"  Rep calendar: {calendar_note}")
        click.echo(f"                see {app_host_url('/settings/calendars')}")
        click.echo("")

    @app.cli.command("rotate-secrets")
    def rotate_secrets_command():
        """Re-encrypt stored calendar secrets with the first key of TERMIN_ENCRYPTION_KEYS."""
        count = sync.rotate_secrets()
        db.session.commit()
        click.echo(f"Re-encrypted {count} calendar secret(s) with the newest key.")

    @app.cli.command("demo-calendar")
    @click.argument("action", type=click.Choice(["start", "stop"]))
    def demo_calendar_command(action):
        """Start or stop the demo's local CalDAV server (Radicale, data under instance/radicale)."""
        if action == "start":
            started = demo_calendar.start(app.instance_path)
            click.echo(
                f"Radicale {'started' if started else 'already running'} on {demo_calendar.base_url()}"
            )
        else:
            demo_calendar.stop(app.instance_path)

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
    def worker_command(burst):
        """Run an RQ worker on the sync, writes and mail queues (needs REDIS_URL); see workers/worker.py."""
        from workers.worker import main

        main(burst=burst)

    @app.cli.command("worker-check")
    @click.option(
        "--max-age", default=60.0, show_default=True, help="Seconds since the worker's last heartbeat."
    )
    def worker_check_command(max_age):
        """Health check: exit 0 if an RQ worker on this host heartbeated within --max-age seconds, else 1."""
        from workers.worker import check

        healthy, message = check(app, max_age)
        click.echo(message)
        raise SystemExit(0 if healthy else 1)

    @app.cli.command("sweep")
    @click.option("--once", is_flag=True, help="Sweep once and exit instead of every SWEEP_INTERVAL_SECONDS.")
    def sweep_command(once):
        """Queue again every due job Redis does not hold (syncs, outbox deliveries, health probes, domain
        checks)."""
        from workers.sweeper import main

        counts = main(app, once=once)
        if counts is not None:
            click.echo(" ".join(f"{kind}={count}" for kind, count in counts.items()))
