"""Circulation's answers to the catalogue (``catalog.interfaces.IStock``): a book's items by
branch, as a column the catalogue's statements select beside each book (one round trip, one
snapshot), and its copies as items: a new book's, more of them, fewer."""

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import JSON
from zope.interface import implementer

from booknexus.branches.queries import default_branch
from booknexus.catalog.interfaces import IStock
from booknexus.catalog.models import Book
from booknexus.circulation import inventory, locks
from booknexus.circulation.models import AVAILABLE, CHECKED_OUT, ON_HOLD_SHELF, WITHDRAWN, Item
from booknexus.circulation.queue import settle
from booknexus.circulation.rules import Rules
from booknexus.refusals import Refused


class json_array(GenericFunction):
    """An aggregate of JSON values into an array: ``json_agg`` / ``json_group_array``."""

    type = JSON()
    inherit_cache = True


class json_pairs(GenericFunction):
    """A JSON object of key, value pairs: ``json_build_object`` / ``json_object``."""

    type = JSON()
    inherit_cache = True


@compiles(json_array, "postgresql")
def _json_agg(element, compiler, **kw):
    return f"json_agg({compiler.process(element.clauses, **kw)})"


@compiles(json_array, "sqlite")
def _json_group_array(element, compiler, **kw):
    return f"json_group_array(json({compiler.process(element.clauses, **kw)}))"


@compiles(json_pairs, "postgresql")
def _json_build_object(element, compiler, **kw):
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


@compiles(json_pairs, "sqlite")
def _json_object(element, compiler, **kw):
    return f"json_object({compiler.process(element.clauses, **kw)})"


def branch_availability(book_id) -> ColumnElement:
    """For a book: ``[{branchId, available, items}, ...]`` by branch where its items are (not
    withdrawn ones), or null when it has none. One aggregate over the book's index range."""
    by_branch = (
        select(
            Item.current_branch_id.label("branch"),
            func.count().filter(Item.status == AVAILABLE).label("available"),
            func.count().label("items"),
        )
        .where(Item.book_id == book_id, Item.status != WITHDRAWN)
        .group_by(Item.current_branch_id)
        .order_by(Item.current_branch_id)
        .correlate_except(Item)  # the book of the statement this column is selected in
        .subquery("by_branch")
    )
    pairs = json_pairs(
        "branchId", by_branch.c.branch, "available", by_branch.c.available, "items", by_branch.c["items"]
    )
    return select(json_array(pairs)).select_from(by_branch).scalar_subquery()


@implementer(IStock)
class CirculationStock:
    def __init__(self, rules: Rules, settings: dict):
        self.rules = rules
        self.settings = settings
        self.prefix = inventory.barcode_prefix(settings)

    def lock_book(self, session: Session, book_id: int) -> Book:
        return locks.lock_book(session, book_id)

    def availability_column(self, book_id):
        return branch_availability(book_id)

    def _home(self, session: Session) -> int:
        return default_branch(session, self.settings).id

    def copies_created(self, session: Session, actor: int | None, book: Book) -> None:
        inventory.add_copies(session, book, book.copies, self._home(session), self.prefix)

    def copies_changing(self, session: Session, actor: int | None, book: Book, copies: int | None) -> None:
        """Lapsed holds expire first; then more copies are new items at the default branch,
        fewer withdraw items on the shelf (the newest first), never one on loan or set aside."""
        settle(session, book, self.rules, actor)
        if copies is None or copies == book.copies:
            return
        if copies > book.copies:
            inventory.add_copies(session, book, copies - book.copies, self._home(session), self.prefix)
            return
        on_shelf = session.scalar(
            select(func.count()).where(Item.book_id == book.id, Item.status == AVAILABLE)
        )
        if book.copies - copies > on_shelf:
            counts = dict(
                session.execute(
                    select(Item.status, func.count())
                    .where(Item.book_id == book.id, Item.status.in_((CHECKED_OUT, ON_HOLD_SHELF)))
                    .group_by(Item.status)
                ).all()
            )
            on_loan, held = counts.get(CHECKED_OUT, 0), counts.get(ON_HOLD_SHELF, 0)
            refusal = Refused(
                "copies_on_loan",
                f"Only {on_shelf} of the {book.copies} copies are on the shelf ({on_loan} on loan"
                + (f", {held} set aside for holds" if held else "")
                + f"); copies cannot drop to {copies}.",
                {"copies": copies, "onShelf": on_shelf, "onLoan": on_loan, "setAside": held},
            )
            refusal.keeps_changes = True  # the settlement stands
            raise refusal
        inventory.withdraw_copies(session, book, book.copies - copies)


def includeme(config):
    stock = CirculationStock(config.registry["booknexus.rules"], config.get_settings())
    config.registry.registerUtility(stock, IStock)
