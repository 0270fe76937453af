"""An index of "Tokens" by expiry: the retention job prunes expired login tokens in batches
whose cost follows the tokens due, not the table's size.

On PostgreSQL the index is built CONCURRENTLY (logins go on meanwhile) and checked valid
afterwards: a build cut short leaves an INVALID index that IF NOT EXISTS would skip for ever,
so such a leftover is dropped and built again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

import logging

import sqlalchemy as sa

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = "ix_Tokens_expiresAt"
ON = '"Tokens" ("expiresAt")'


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
    if op.get_bind().dialect.name != "postgresql":
        op.execute(f'CREATE INDEX "{INDEX}" ON {ON}')
        return
    with op.get_context().autocommit_block():
        op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" ON {ON}')
        if not _index_is_valid():
            log.warning("index %s was left INVALID by an interrupted build: building it again", INDEX)
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"')
            op.execute(f'CREATE INDEX CONCURRENTLY "{INDEX}" ON {ON}')
            if not _index_is_valid():
                raise RuntimeError(f"index {INDEX} is still INVALID after building it again")


def downgrade():
    op.execute(f'DROP INDEX "{INDEX}"')
