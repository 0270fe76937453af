"""Branches, and the default one every library starts with.

"Branches": a code (1-16 letters, digits or ``-``, stored upper-case, so its unique
constraint holds whatever the case it is typed in; a CHECK keeps rows written by hand to that
form), a name, whether readers may collect holds there, and the timestamps.

The upgrade creates the default branch, its code and name from the settings
``booknexus.branch.default_code`` and ``.default_name`` (``MAIN`` and ``Main library``
without them), which alembic/env.py hands over in ``config.attributes["booknexus.settings"]``:
a one-branch library configures nothing. A setting that is not a code, or an empty name,
stops the upgrade before the table is made. A new table: no existing one is locked.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

import logging
import re
from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import context, op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TIMESTAMP = sa.DateTime(timezone=True)
CODE = re.compile(r"[A-Z0-9-]{1,16}")
CODE_FORM = {
    "postgresql": "code ~ '^[A-Z0-9-]{1,16}$'",
    "sqlite": "length(code) BETWEEN 1 AND 16 AND code NOT GLOB '*[^A-Z0-9-]*'",
}


def default_branch(settings: dict) -> tuple[str, str]:
    code = str(settings.get("booknexus.branch.default_code", "MAIN")).strip().upper()
    name = str(settings.get("booknexus.branch.default_name", "Main library")).strip()
    if not CODE.fullmatch(code):
        raise ValueError(f"booknexus.branch.default_code = {code!r}: give 1-16 letters, digits or -")
    if not name or len(name) > 255 or "\x00" in name:
        raise ValueError(f"booknexus.branch.default_name = {name!r}: give a name of 1-255 characters")
    return code, name


def upgrade():
    code, name = default_branch(context.config.attributes.get("booknexus.settings", {}))
    branches = op.create_table(
        "Branches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("isPickupLocation", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("createdAt", TIMESTAMP, nullable=False),
        sa.Column("updatedAt", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_Branches"),
        sa.UniqueConstraint("code", name="uq_Branches_code"),
        sa.CheckConstraint(CODE_FORM[op.get_bind().dialect.name], name="ck_Branches_code_form"),
        sqlite_autoincrement=True,
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        branches,
        [{"code": code, "name": name, "isPickupLocation": True, "createdAt": now, "updatedAt": now}],
    )
    log.info("created the default branch %s (%s)", code, name)


def downgrade():
    op.drop_table("Branches")
