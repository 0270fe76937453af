"""Catalogue search: indexed words of every book, a lexicon for near spellings, ISBN forms.

PostgreSQL: a generated tsvector column "searchWords" (title words weighted A, author words
B, accents folded by ``unaccent``) under a GIN index; "SearchWords", the lexicon of every
indexed word (where near spellings are looked up), kept by a trigger on "Books".
SQLite: an FTS5 table over "Books" (``remove_diacritics``), kept by triggers, and an
fts5vocab table as its lexicon. Both: an index on the ISBN's digits.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ISBN_DIGITS = """upper(replace(replace(isbn, '-', ''), ' ', ''))"""
EXTENSIONS_HELP = """
BookNexus's catalogue search needs the PostgreSQL extension unaccent (it ships with
PostgreSQL's contrib package and is trusted, so the database owner may create it).
Creating them failed: {error}
Fix: install the contrib package (Debian: postgresql-contrib), then as the database owner or a
superuser run, in this database:
    CREATE EXTENSION IF NOT EXISTS unaccent;
and run `alembic -c <ini> upgrade head` again.
"""

POSTGRESQL = [
    # unaccent() is only STABLE (its dictionary could change); naming the dictionary makes the
    # result fixed, which an index and a generated column require
    """CREATE FUNCTION booknexus_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
       AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$""",
    """ALTER TABLE "Books" ADD COLUMN "searchWords" tsvector GENERATED ALWAYS AS (
           setweight(to_tsvector('simple', booknexus_fold(title)), 'A')
           || setweight(to_tsvector('simple', booknexus_fold(author)), 'B')) STORED""",
    'CREATE INDEX "ix_Books_searchWords" ON "Books" USING gin ("searchWords")',
    f'CREATE INDEX "ix_Books_isbn_digits" ON "Books" (({ISBN_DIGITS}))',
    'CREATE TABLE "SearchWords" (word text COLLATE "C" PRIMARY KEY)',
    """INSERT INTO "SearchWords" SELECT DISTINCT unnest(tsvector_to_array("searchWords")) FROM "Books"
       ON CONFLICT DO NOTHING""",
    """CREATE FUNCTION "Books_lexicon"() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           INSERT INTO "SearchWords"
           SELECT DISTINCT unnest(tsvector_to_array("searchWords")) FROM new_rows
           ON CONFLICT DO NOTHING;
           RETURN NULL;
       END $$""",
    """CREATE TRIGGER "Books_lexicon_insert" AFTER INSERT ON "Books" REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION "Books_lexicon"()""",
    """CREATE TRIGGER "Books_lexicon_update" AFTER UPDATE ON "Books" REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION "Books_lexicon"()""",
]

SQLITE = [
    """CREATE VIRTUAL TABLE "BookSearch" USING fts5(title, author, content='Books', content_rowid='id',
       tokenize='unicode61 remove_diacritics 2')""",
    """CREATE VIRTUAL TABLE "BookSearchWords" USING fts5vocab("BookSearch", 'row')""",
    """INSERT INTO "BookSearch" ("BookSearch") VALUES ('rebuild')""",
    """CREATE TRIGGER "Books_search_insert" AFTER INSERT ON "Books" BEGIN
       INSERT INTO "BookSearch" (rowid, title, author) VALUES (NEW.id, NEW.title, NEW.author); END""",
    """CREATE TRIGGER "Books_search_delete" AFTER DELETE ON "Books" BEGIN
       INSERT INTO "BookSearch" ("BookSearch", rowid, title, author)
       VALUES ('delete', OLD.id, OLD.title, OLD.author); END""",
    """CREATE TRIGGER "Books_search_update" AFTER UPDATE OF title, author ON "Books" BEGIN
       INSERT INTO "BookSearch" ("BookSearch", rowid, title, author)
       VALUES ('delete', OLD.id, OLD.title, OLD.author);
       INSERT INTO "BookSearch" (rowid, title, author) VALUES (NEW.id, NEW.title, NEW.author); END""",
    f'CREATE INDEX "ix_Books_isbn_digits" ON "Books" ({ISBN_DIGITS})',
]


def create_extensions() -> None:
    connection = op.get_bind()
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
    except sa.exc.DBAPIError as exc:
        raise RuntimeError(EXTENSIONS_HELP.format(error=str(exc.orig).strip())) from None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        create_extensions()
        statements = POSTGRESQL
    else:
        statements = SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for statement in (
            'DROP TRIGGER "Books_lexicon_update" ON "Books"',
            'DROP TRIGGER "Books_lexicon_insert" ON "Books"',
            'DROP FUNCTION "Books_lexicon"()',
            'DROP TABLE "SearchWords"',
            'DROP INDEX "ix_Books_isbn_digits"',
            'ALTER TABLE "Books" DROP COLUMN "searchWords"',
            "DROP FUNCTION booknexus_fold(text)",
        ):
            op.execute(statement)
        return
    for statement in (
        'DROP TRIGGER "Books_search_update"',
        'DROP TRIGGER "Books_search_delete"',
        'DROP TRIGGER "Books_search_insert"',
        'DROP INDEX "ix_Books_isbn_digits"',
        'DROP TABLE "BookSearchWords"',
        'DROP TABLE "BookSearch"',
    ):
        op.execute(statement)
