"""The article registry, as ``articles.sqlite3`` has kept it, under names that are the registry's own: ``copies``,
``lsh`` and ``meta`` become ``article_copies``, ``article_lsh`` and ``article_meta`` (with their indexes), since
on PostgreSQL every store's tables share one database and the BM25 index has a ``meta`` too.

A file made before migrations keeps its rows: its tables are renamed in place. Only a SQLite file that holds the
registry's ``articles`` is renamed: PostgreSQL never held the registry before this revision, and a ``meta``
there may be another store's. A registry from before the version of the MinHash that signed its articles was
recorded gets it now: the first MinHash signed them. An empty one records nothing (it reads as signed by none
yet), so a new database's registry holds no row until articles are stored (``byline db import`` copies into
empty stores only).
"""

import sqlalchemy as sa
from alembic import op

from backend.store.migrations.existing import create_index, create_table, has_table

revision = "articles_0001"
down_revision = None
branch_labels = ("articles",)
depends_on = None

RENAMED = {"copies": "article_copies", "lsh": "article_lsh", "meta": "article_meta"}
OLD_INDEXES = ("copies_article", "copies_url", "lsh_article")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and has_table("articles"):
        for old, new in RENAMED.items():
            if has_table(old) and not has_table(new):
                op.rename_table(old, new)
        for index in OLD_INDEXES:  # SQLite renames no index: they went with their tables under the old names
            op.execute(f"DROP INDEX IF EXISTS {index}")
    create_table(
        "articles",
        lambda: op.create_table(
            "articles",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("text_hash", sa.Text, nullable=False),
            sa.Column("content_hash", sa.Text, nullable=False),
            sa.Column("cluster_id", sa.Text, nullable=False),
            sa.Column("title", sa.Text, nullable=False),
            sa.Column("url", sa.Text),
            sa.Column("source", sa.Text),
            sa.Column("published_at", sa.Text),
            sa.Column("origin", sa.Text),
            sa.Column("chunks", sa.Integer, nullable=False),
            sa.Column("signature", sa.LargeBinary),
            sa.Column("ingested_at", sa.Text, nullable=False),
        ),
    )
    for name, column in (("text_hash", "text_hash"), ("url", "url"), ("cluster", "cluster_id"), ("origin", "origin")):
        create_index(f"articles_{name}", "articles", [column])
    create_table(
        "article_copies",
        lambda: op.create_table(
            "article_copies",
            sa.Column("copy_id", sa.Text, primary_key=True),
            sa.Column("article_id", sa.Text, sa.ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
            sa.Column("url", sa.Text),
            sa.Column("source", sa.Text),
            sa.Column("origin", sa.Text),
        ),
    )
    create_index("article_copies_article", "article_copies", ["article_id"])
    create_index("article_copies_url", "article_copies", ["url"])
    create_table(
        "article_lsh",
        lambda: op.create_table(
            "article_lsh",
            sa.Column("band", sa.Integer, primary_key=True),
            sa.Column("bucket", sa.BigInteger, primary_key=True),
            sa.Column("article_id", sa.Text, sa.ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
            sqlite_with_rowid=False,
        ),
    )
    create_index("article_lsh_article", "article_lsh", ["article_id"])
    create_table(
        "article_meta",
        lambda: op.create_table(
            "article_meta",
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("value", sa.Integer, nullable=False),
        ),
    )
    bind = op.get_bind()
    meta = sa.table("article_meta", sa.column("key", sa.Text), sa.column("value", sa.Integer))
    articles = sa.table("articles", sa.column("signature", sa.LargeBinary))
    if bind.execute(sa.select(meta.c.key).where(meta.c.key == "minhash")).first() is None:
        signed = bind.execute(sa.select(sa.literal(1)).where(articles.c.signature.is_not(None)).limit(1)).first()
        if signed:
            bind.execute(sa.insert(meta).values(key="minhash", value=1))
