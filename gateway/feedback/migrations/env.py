"""Alembic environment: migrate the connection the store hands over (config.attributes["connection"])."""

from alembic import context

from gateway.feedback.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
# The store holds the connection inside its own transaction and lock; Alembic joins that transaction.
context.configure(connection=connection, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
