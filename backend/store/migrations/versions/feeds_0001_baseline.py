"""Followed sources and the items taken from them, as ``feeds.sqlite3`` has kept them."""

import sqlalchemy as sa
from alembic import op

from backend.store.migrations.existing import create_table

revision = "feeds_0001"
down_revision = None
branch_labels = ("feeds",)
depends_on = None


def upgrade() -> None:
    create_table(
        "sources",
        lambda: op.create_table(
            "sources",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("url", sa.Text, nullable=False, unique=True),
            sa.Column("title", sa.Text),
            sa.Column("feed_title", sa.Text),
            sa.Column("kind", sa.Text),
            sa.Column("added_at", sa.Text, nullable=False),
            sa.Column("interval_s", sa.Float),
            sa.Column("ttl_s", sa.Float),
            sa.Column("etag", sa.Text),
            sa.Column("last_modified", sa.Text),
            sa.Column("next_at", sa.Float, nullable=False),
            sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
            sa.Column("last_fetch_at", sa.Text),
            sa.Column("last_status", sa.Text, nullable=False, server_default="pending"),
            sa.Column("http_status", sa.Integer),
            sa.Column("last_error", sa.Text),
            sa.Column("last_new", sa.Integer, nullable=False, server_default="0"),
            sa.Column("total_new", sa.Integer, nullable=False, server_default="0"),
        ),
    )
    create_table(
        "items",
        lambda: op.create_table(
            "items",
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("source_id", sa.Text, nullable=False),
            sa.Column("article_id", sa.Text),
            sa.Column("outcome", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
            sa.Column("detail", sa.Text),
            sa.Column("seen_at", sa.Text, nullable=False),
        ),
    )
