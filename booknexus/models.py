"""Every mapped class, imported in one place so the metadata is complete (alembic, scripts)."""

from booknexus.accounts.models import Token
from booknexus.books.models import Book
from booknexus.checkouts.models import Checkout
from booknexus.log.models import CheckoutEvent
from booknexus.meta import Base
from booknexus.users.models import User

__all__ = ["Base", "Book", "Checkout", "CheckoutEvent", "Token", "User"]
