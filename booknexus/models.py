"""Every mapped class, imported in one place so the metadata is complete (alembic, scripts)."""

from booknexus.accounts.models import Token
from booknexus.books.models import Book
from booknexus.checkouts.models import Checkout
from booknexus.holds.models import Hold
from booknexus.log.models import CheckoutEvent, HoldEvent
from booknexus.meta import Base
from booknexus.users.models import User

__all__ = ["Base", "Book", "Checkout", "CheckoutEvent", "Hold", "HoldEvent", "Token", "User"]
