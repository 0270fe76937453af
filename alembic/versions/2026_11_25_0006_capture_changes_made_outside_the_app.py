"""Capture triggers on "Checkouts": changes made outside the app are logged as they happen.

The trigger bodies are defined once, in ``booknexus.log.capture``, because startup puts
them back with the same code when it finds them missing or disabled.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op
from booknexus.log import capture

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    capture.install(op.get_bind())


def downgrade():
    capture.uninstall(op.get_bind())
