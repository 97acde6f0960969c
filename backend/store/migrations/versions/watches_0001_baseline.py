"""Saved questions, the queue of articles to check, events and webhook deliveries, as ``watches.sqlite3`` has
kept them."""

import sqlalchemy as sa
from alembic import op

from backend.store.migrations.existing import create_index, create_table

revision = "watches_0001"
down_revision = None
branch_labels = ("watches",)
depends_on = None


def upgrade() -> None:
    create_table(
        "watches",
        lambda: op.create_table(
            "watches",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("owner", sa.Text, nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("filters", sa.Text, nullable=False),
            sa.Column("webhook_url", sa.Text),
            sa.Column("webhook_secret", sa.Text),
            sa.Column("created_at", sa.Text, nullable=False),
        ),
    )
    create_index("watches_owner", "watches", ["owner", "created_at"])
    create_table(
        "pending",
        lambda: op.create_table(
            "pending",
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("article_id", sa.Text, nullable=False),
            sa.Column("queued_at", sa.Text, nullable=False),
            sa.Column("claimed_until", sa.Float, nullable=False, server_default="0"),
            sqlite_autoincrement=True,
        ),
    )
    create_table(
        "events",
        lambda: op.create_table(
            "events",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("watch_id", sa.Text, sa.ForeignKey("watches.id", ondelete="CASCADE"), nullable=False),
            sa.Column("article_id", sa.Text, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("read", sa.Integer, nullable=False, server_default="0"),
            sa.UniqueConstraint("watch_id", "article_id"),
        ),
    )
    create_index("events_watch", "events", ["watch_id", "created_at"])
    create_table(
        "deliveries",
        lambda: op.create_table(
            "deliveries",
            sa.Column("event_id", sa.Text, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("next_attempt_at", sa.Float),
            sa.Column("last_error", sa.Text),
            sa.Column("delivered_at", sa.Text),
        ),
    )
    create_index("deliveries_due", "deliveries", ["next_attempt_at"])
