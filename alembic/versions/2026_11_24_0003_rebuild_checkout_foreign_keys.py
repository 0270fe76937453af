"""Purge orphaned checkouts and rebuild the foreign keys of Checkouts as CASCADE/CASCADE.

Legacy databases carry no foreign keys, Sequelize's (ON UPDATE CASCADE only, sometimes
twice on one column) or hand-made ones, and may hold orphans that would make adding a key
fail (`Key (userId)=(4) is not present in table "Users"`). Orphans are deleted first, each
logged as `purged`; then whatever keys exist are dropped and the two CASCADE/CASCADE keys
and their indexes created (booknexus.foreign_keys.rebuild, shared with booknexus-fix-fk).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import logging

from alembic import op
from booknexus.foreign_keys import rebuild

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    for action in rebuild(op):
        log.info("Checkouts foreign keys: %s", action)


def downgrade():
    # Nothing to undo: CASCADE/CASCADE keys and their indexes are valid under revision 0002
    # too (a new database gets exactly these from 0001), the purged orphans pointed at
    # nothing and stay recorded in the log, and restoring a legacy database's weaker keys
    # would only bring back the bug this revision fixes.
    log.info("downgrade 0003: foreign keys and indexes kept as they are")
