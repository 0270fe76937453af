"""Every mapped class, imported in one place so the metadata is complete (alembic, scripts)."""

from booknexus.accounts.models import Token, User
from booknexus.catalog.models import Book
from booknexus.circulation.eventlog.models import CheckoutEvent, HoldEvent
from booknexus.circulation.models import Checkout, Hold
from booknexus.web.schema import Base

__all__ = ["Base", "Book", "Checkout", "CheckoutEvent", "Hold", "HoldEvent", "Token", "User"]
