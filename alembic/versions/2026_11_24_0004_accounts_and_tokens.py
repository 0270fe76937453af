"""Accounts: a role and an optional password hash per user, and bearer tokens.

Legacy users become members without a password until a librarian sets one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("Users", sa.Column("role", sa.String(16), nullable=False, server_default="member"))
    op.add_column("Users", sa.Column("passwordHash", sa.String(255)))
    op.create_table(
        "Tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "userId",
            sa.Integer,
            sa.ForeignKey("Users.id", ondelete="CASCADE", onupdate="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("tokenHash", sa.String(64), nullable=False, unique=True),
        sa.Column("createdAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expiresAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revokedAt", sa.DateTime(timezone=True)),
    )


def downgrade():
    op.drop_table("Tokens")
    # plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35 too): recreating "Users" in batch
    # mode would be a parent-table rebuild, which this needs none of
    for column in ("passwordHash", "role"):
        op.execute(f'ALTER TABLE "Users" DROP COLUMN "{column}"')
