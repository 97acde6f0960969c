"""Alembic's environment: migrations run on a connection the store hands over (``backend.store.db``), already in
its transaction and holding the lock that keeps two processes from upgrading at once."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
