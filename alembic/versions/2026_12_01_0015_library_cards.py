"""Library cards: each reader may carry a card whose barcode the desk scans.

"Users"."cardNumber": optional, letters, digits and ``-`` (1-32 characters, the alphabet of
item barcodes), unique whatever its case (an index on ``upper("cardNumber")``, which the
desk's lookup uses). Nothing to fill in on a legacy database: cards are issued by
librarians. On PostgreSQL the index is built CONCURRENTLY (the column is new and empty, so
this is quick, but "Users" stays writable meanwhile) and checked valid afterwards.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

import logging

import sqlalchemy as sa

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = "uq_Users_cardNumber_upper"
ON = '"Users" (upper("cardNumber"))'


def _index_is_valid() -> bool | None:
    return (
        op.get_bind()
        .execute(
            sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": f'"{INDEX}"'},
        )
        .scalar()
    )


def upgrade():
    # a plain ADD COLUMN on both backends: no batch rebuild of "Users" on SQLite (its triggers stay)
    op.add_column("Users", sa.Column("cardNumber", sa.String(32), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        op.execute(f'CREATE UNIQUE INDEX "{INDEX}" ON {ON}')
        return
    with op.get_context().autocommit_block():
        op.execute(f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" ON {ON}')
        if not _index_is_valid():
            log.warning("index %s was left INVALID by an interrupted build: building it again", INDEX)
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')
            op.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{INDEX}" ON {ON}')
            if not _index_is_valid():
                raise RuntimeError(f"index {INDEX} is still INVALID after building it again")


def downgrade():
    op.execute(f'DROP INDEX "{INDEX}"')
    if op.get_bind().dialect.name == "sqlite":
        op.execute('ALTER TABLE "Users" DROP COLUMN "cardNumber"')  # SQLite 3.35+: no rebuild
    else:
        op.drop_column("Users", "cardNumber")
