"""Alembic environment: the store's connection when it migrates, else the gateway's database for the CLI.

The gateway passes its connection (config.attributes["connection"]) inside its own transaction and lock.
The alembic CLI (gateway/feedback/alembic.ini) gets none: it opens the database the gateway would use,
FEEDBACK_DATABASE_URL or the SQLite default (gateway/config.py, the one home of that default), under the
same migration lock.
"""

from logging.config import fileConfig

from alembic import context

from gateway.config import GatewayConfig
from gateway.feedback.schema import VERSION_TABLE, metadata
from gateway.feedback.store import create_feedback_engine, database_url, migration_connection

config = context.config
# Alembic's cookbook idiom: the CLI logs what it runs; a caller that owns logging (tests) turns it off.
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
# target_metadata: what `revision --autogenerate` and `alembic check` compare the database with.
options = {"version_table": VERSION_TABLE, "target_metadata": metadata}


def run_migrations(connection) -> None:
    """Migrate `connection`; Alembic joins the transaction it is in."""
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
elif context.is_offline_mode():  # `alembic upgrade head --sql`: the SQL, written out, nothing run
    context.configure(
        url=database_url(GatewayConfig.from_env().feedback_database), literal_binds=True, **options
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_feedback_engine(GatewayConfig.from_env().feedback_database)
    try:
        with migration_connection(engine) as locked:
            run_migrations(locked)
    finally:
        engine.dispose()
