"""Conversations, their turns and the readers' feedback, as the SQLite files have kept them; the owner column
added where a file from before owners lacks it (its conversations then belong to no key)."""

import sqlalchemy as sa
from alembic import op

from backend.store.migrations.existing import create_index, create_table, has_column

revision = "sessions_0001"
down_revision = None
branch_labels = ("sessions",)
depends_on = None


def upgrade() -> None:
    create_table(
        "sessions",
        lambda: op.create_table(
            "sessions",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
            sa.Column("owner", sa.Text, nullable=False, server_default=""),
        ),
    )
    if not has_column("sessions", "owner"):
        op.add_column("sessions", sa.Column("owner", sa.Text, nullable=False, server_default=""))
    create_table(
        "turns",
        lambda: op.create_table(
            "turns",
            sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
            sa.Column("position", sa.Integer, primary_key=True),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("rewritten_query", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("citations", sa.Text, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
        ),
    )
    create_index("sessions_updated", "sessions", ["updated_at"])
    create_index("sessions_owner", "sessions", ["owner", "updated_at"])
    create_table(
        "feedback",
        lambda: op.create_table(
            "feedback",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("session_id", sa.Text, nullable=False),
            sa.Column("turn", sa.Integer, nullable=False),
            sa.Column("rating", sa.Text, sa.CheckConstraint("rating IN ('up', 'down')"), nullable=False),
            sa.Column("comment", sa.Text, nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("citations", sa.Text, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
            sqlite_autoincrement=True,
        ),
    )
