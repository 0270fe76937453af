"""Every mapped class, imported in one place so the metadata is complete (alembic, scripts)."""

from booknexus.accounts.models import Token, User
from booknexus.branches.models import Branch
from booknexus.catalog.models import Book
from booknexus.circulation.eventlog.models import CheckoutEvent, HoldEvent, ItemEvent
from booknexus.circulation.models import Checkout, Hold, Item
from booknexus.db.schema import Base

# Kept by the database itself, outside the ORM: search machinery (revisions 0007, 0008),
# SQLite's marks for the capture triggers (0006) and for anonymisation (0010), and the
# retention policy's partial indexes, whose predicates name the anonymous reader's id (0010).
# Autogenerate's comparison leaves them be.
DATABASE_ONLY = {
    "tables": {"SearchWords", "BookSearch", "BookSearchWords", "LogWriter", "Anonymising"},
    "table_prefixes": ("BookSearch_",),  # FTS5's shadow tables
    "columns": {("Books", "searchWords")},
    "indexes": {
        "ix_Books_isbn_digits",
        "ix_Books_searchWords",
        "ix_Books_titleWords",
        "ix_Checkouts_returnedAt_named",
        "ix_Holds_endedAt_named",
        "ix_CheckoutEvents_occurredAt_ended_named",
        "ix_HoldEvents_occurredAt_ended_named",
    },
}


def in_the_models(object_, name, type_, reflected, compare_to) -> bool:
    """Alembic's ``include_object``: False for what the database keeps outside the ORM."""
    if type_ == "table":
        return name not in DATABASE_ONLY["tables"] and not name.startswith(DATABASE_ONLY["table_prefixes"])
    if type_ == "column":
        return (object_.table.name, name) not in DATABASE_ONLY["columns"]
    if type_ == "index":
        return name not in DATABASE_ONLY["indexes"]
    return True


__all__ = [
    "DATABASE_ONLY",
    "in_the_models",
    "Base",
    "Book",
    "Branch",
    "Checkout",
    "CheckoutEvent",
    "Hold",
    "HoldEvent",
    "Item",
    "ItemEvent",
    "Token",
    "User",
]
