"""The BM25 index's tables under names of their own (``lexical_docs``, ``lexical_postings``, ``lexical_meta``):
in the one shared database a plain ``meta`` would be the article registry's.

A ``lexical.sqlite3`` written before migrations keeps its rows: its ``docs``, ``postings`` and ``meta`` are
renamed in place (SQLite renames ``sqlite_sequence``'s row with its table, so doc numbers stay never reused).
SQLite cannot rename an index, so the postings' index by doc is made again under its new name: a few seconds
once (2.6 s at 50k chunks). An index from before doc numbers, its postings keyed by chunk id, is converted
first, and its version bumped so that a process which loaded it reads it again. Only a SQLite file is adopted:
on PostgreSQL a ``docs`` or ``meta`` belongs to someone else. New tables are left empty, the index's version
and analyzer rows written by the store when it opens them, so ``byline db import`` finds nothing in its way.
"""

import sqlalchemy as sa
from alembic import op

from backend.store.migrations.existing import create_index, create_table, has_column, has_table

revision = "lexical_0001"
down_revision = None
branch_labels = ("lexical",)
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _adopt()
    create_table("lexical_docs", _docs)
    create_table("lexical_postings", _postings)
    create_index("lexical_postings_doc", "lexical_postings", ["doc"])
    create_table(
        "lexical_meta",
        lambda: op.create_table(
            "lexical_meta",
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("value", sa.Integer, nullable=False),
        ),
    )


def _docs() -> None:
    op.create_table(
        "lexical_docs",
        sa.Column("doc", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chunk_id", sa.Text, nullable=False, unique=True),
        sa.Column("article_id", sa.Text, nullable=False),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("published_ts", sa.BigInteger, nullable=False),
        sa.Column("dated", sa.Integer, nullable=False),
        sa.Column("source_key", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )


def _postings() -> None:
    op.create_table(
        "lexical_postings",
        sa.Column("term", sa.Text, primary_key=True),
        sa.Column("doc", sa.Integer, primary_key=True),
        sa.Column("tf", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )


def _adopt() -> None:
    """The tables of a file from before migrations, renamed; their rows kept."""
    if has_table("postings") and has_column("postings", "chunk_id"):
        _number_docs()
    for old, new in (("docs", "lexical_docs"), ("postings", "lexical_postings"), ("meta", "lexical_meta")):
        if has_table(old) and not has_table(new):
            op.rename_table(old, new)
    if has_table("lexical_postings") and "postings_doc" in {
        i["name"] for i in sa.inspect(op.get_bind()).get_indexes("lexical_postings")
    }:
        op.drop_index("postings_doc", table_name="lexical_postings")


def _number_docs() -> None:
    """Postings keyed by chunk id become postings keyed by a doc number, every posting kept."""
    op.execute("DROP INDEX IF EXISTS postings_chunk")
    op.rename_table("docs", "docs_v1")
    op.rename_table("postings", "postings_v1")
    _docs()
    _postings()
    op.execute(
        "INSERT INTO lexical_docs (chunk_id, article_id, length, published_ts, dated, source_key)"
        " SELECT chunk_id, article_id, length, published_ts, dated, source_key FROM docs_v1 ORDER BY chunk_id"
    )
    op.execute(
        "INSERT INTO lexical_postings SELECT p.term, d.doc, p.tf FROM postings_v1 p"
        " JOIN lexical_docs d ON d.chunk_id = p.chunk_id ORDER BY p.term, d.doc"
    )
    op.drop_table("postings_v1")
    op.drop_table("docs_v1")
    if has_table("meta"):
        op.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
