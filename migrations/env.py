"""Alembic environment: runs inside the Flask app (``flask db ...``), against the app's own engine."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from app.db import UTCDateTime

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_metadata = current_app.extensions["migrate"].db.metadata


def render_item(type_, obj, autogen_context):
    # Migrations must not import app code that may change later; write our column type as what it stores.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def skip_empty_autogenerate(context_, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_online() -> None:
    options = dict(current_app.extensions["migrate"].configure_args)
    options.setdefault("process_revision_directives", skip_empty_autogenerate)
    engine = current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Fail fast rather than queue behind live traffic's locks; one migrator at a time.
            connection.exec_driver_sql("SET lock_timeout = '5s'")
            connection.exec_driver_sql("SET statement_timeout = '10min'")
            connection.exec_driver_sql("SELECT pg_advisory_lock(7310001)")
        context.configure(
            connection=connection, target_metadata=target_metadata, render_item=render_item, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_unlock(7310001)")
            connection.commit()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run `flask db upgrade`.")
run_migrations_online()
