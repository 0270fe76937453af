"""Catalogue search: an index of each title's words, so title matches are looked up directly.

The weighted "searchWords" index cannot tell a title word from an author word without reading
every book that has the word; for a word common among authors and rare in titles (a surname,
"asim"), that is tens of thousands of rows. An expression index on the title's words alone
answers the title tiers from the index. PostgreSQL only: SQLite's FTS5 filters by column.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# the same expression as booknexus.books.search.TITLE_WORDS, or the planner won't use it
TITLE_WORDS = "to_tsvector('simple', booknexus_fold(title))"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'CREATE INDEX "ix_Books_titleWords" ON "Books" USING gin (({TITLE_WORDS}))')
        # an expression index has no statistics until analysed; without them the planner
        # guesses a prefix matches 2% of the catalogue
        op.execute('ANALYZE "Books"')


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute('DROP INDEX "ix_Books_titleWords"')
