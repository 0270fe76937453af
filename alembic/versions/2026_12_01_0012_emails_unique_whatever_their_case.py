"""Emails are unique whatever their case: a unique index on lower(email).

``Ada@x.org`` and ``ada@x.org`` are one person's address; the legacy back end (and BookNexus
before this revision) could hold them as two accounts. The index is the database's refusal
of a new such pair; the app refuses it first (409 ``email_taken``) and logs in by
``lower(email)``, which this index also serves.

A legacy database may already hold pairs. The upgrade still completes, and changes no
account: it logs each group by its users' ids (no email in a log line) with the query that
finds them all, and builds the index so that each group's first account (lowest id) takes
the email in the index and the others are told apart by their own id, frozen in the index
as it is today: ``(lower(email), CASE WHEN id IN (...) THEN id ELSE 0 END)``. So every
existing account keeps working (each logs in with its exact email), and any new account or
changed email that matches a group is refused, as on a clean database. A librarian resolves a
group by giving all but one of its accounts another address; once none is left, a later
revision can rebuild the plain index (on a clean database the index is the plain one now).

"Users" is locked against writes (SHARE) from the search for pairs to the end of the
build, so no pair appears between the two; that wait is bounded by
``booknexus.migration_lock_timeout`` (alembic/env.py), and the build over one row per
reader is short.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

import logging

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

INDEX = "ix_Users_lower_email"
FIND = {  # what the operator runs to see every group left
    "postgresql": 'SELECT lower(email), array_agg(id) FROM "Users" GROUP BY 1 HAVING count(*) > 1',
    "sqlite": 'SELECT lower(email), group_concat(id) FROM "Users" GROUP BY 1 HAVING count(*) > 1',
}
PAIRED = (
    'SELECT lower(email), id FROM "Users" WHERE lower(email) IN '
    '(SELECT lower(email) FROM "Users" GROUP BY lower(email) HAVING count(*) > 1) ORDER BY id'
)


def upgrade():
    connection = op.get_bind()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        op.execute('LOCK TABLE "Users" IN SHARE MODE')
    groups: dict[str, list[int]] = {}
    for email, user_id in connection.exec_driver_sql(PAIRED):
        groups.setdefault(email, []).append(user_id)
    for ids in groups.values():
        log.warning(
            "users %s have emails that differ only in case: each keeps logging in with its exact "
            "email and no new account may take that email in any case; give all but one of them "
            "another address. Every such group: %s",
            ", ".join(map(str, ids)),
            FIND[dialect],
        )
    told_apart = sorted(user_id for ids in groups.values() for user_id in ids[1:])
    if not told_apart:
        op.execute(f'CREATE UNIQUE INDEX "{INDEX}" ON "Users" (lower(email))')
        return
    log.warning(
        "%d accounts share an email with another in a different case; %s keeps them apart until "
        "they are resolved",
        len(told_apart),
        INDEX,
    )
    ids = ", ".join(map(str, told_apart))
    op.execute(
        f'CREATE UNIQUE INDEX "{INDEX}" ON "Users" (lower(email), (CASE WHEN id IN ({ids}) THEN id ELSE 0 END))'
    )


def downgrade():
    op.execute(f'DROP INDEX "{INDEX}"')
