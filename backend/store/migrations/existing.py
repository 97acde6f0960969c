"""What a baseline migration needs to know about tables made before migrations existed.

A SQLite file written by Byline before Alembic has its tables already and no version: the baseline creates
only what is missing, so such a file is upgraded in place, its rows kept.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op


def has_table(name: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(name)


def has_column(table: str, column: str) -> bool:
    return column in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def create_index(name: str, table: str, columns: list[str]) -> None:
    if name not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns)


def create_table(name: str, make: Callable[[], object]) -> None:
    if not has_table(name):
        make()
