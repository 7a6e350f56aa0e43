"""``flask`` commands of the application. The job processes' commands (``flask worker``, ``flask sweep``) are
in workers/commands.py, registered as a Flask CLI plugin, since the workers import the app and not the
reverse."""

import os

import click
from flask import Flask

from app import demo, demo_calendar, transaction
from app.pages.links import page_url
from app.pages.paths import page_path
from app.sync import services as sync
from app.web.links import app_host_url, external_url


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo tenant (once), connect its rep's calendar, and print where to sign in."""
        seeded = demo.seed_demo()
        transaction.checkpoint()
        try:
            calendar_note = demo.connect_demo_calendar(seeded.rep, app.instance_path)
            transaction.checkpoint()
        except Exception as error:  # the demo still runs without its calendar; say why
            transaction.rollback()
            calendar_note = f"NOT connected ({error}); is Radicale running? `flask demo-calendar start`"
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
        if seeded.team_page is not None:
            click.echo(f"  Team page:    {page_url(seeded.team_page)} (round robin: Rita and Tom)")
            click.echo(f"  Rep 2:        {demo.SECOND_REP_EMAIL} / {demo.SECOND_REP_PASSWORD}")
        click.echo(f"  Demo domain:  {external_url(seeded.domain.hostname, '/robots.txt')}")
        click.echo(
            f"  Chat widget:  {external_url(seeded.domain.hostname, '/widget.js')} (answer in the Inbox:"
        )
        click.echo(
            f"                {app_host_url('/inbox')}; set it up at {app_host_url('/settings/chat')})"
        )
        click.echo(f"  Rep calendar: {calendar_note}")
        click.echo(f"                see {app_host_url('/settings/calendars')}")
        click.echo("")

    @app.cli.command("rotate-secrets")
    def rotate_secrets_command():
        """Re-encrypt stored calendar secrets with the first key of TERMIN_ENCRYPTION_KEYS."""
        count = sync.rotate_secrets()
        transaction.checkpoint()
        click.echo(f"Re-encrypted {count} calendar secret(s) with the newest key.")

    @app.cli.command("demo-calendar")
    @click.argument("action", type=click.Choice(["start", "stop"]))
    def demo_calendar_command(action):
        """Start or stop the demo's local CalDAV server (Radicale, data under instance/radicale)."""
        if action == "start":
            started = demo_calendar.start(app.instance_path)
            click.echo(
                f"Radicale {'started' if started else 'already running'} on "
                f"{demo_calendar.base_url(app.instance_path)}"
            )
        else:
            demo_calendar.stop(app.instance_path)
