"""Circulation's answers to the catalogue (``catalog.interfaces.IStock``): a book's copies on
loan and set aside, as columns the catalogue's statements select beside each book (one round
trip, one snapshot), and the rule that copies cannot drop below those."""

from sqlalchemy.orm import Session
from zope.interface import implementer

from booknexus.catalog.interfaces import IStock
from booknexus.catalog.models import Book
from booknexus.circulation import locks
from booknexus.circulation.queries import open_loans_query, set_aside_query
from booknexus.circulation.queue import settle
from booknexus.circulation.rules import Rules
from booknexus.refusals import Refused


@implementer(IStock)
class CirculationStock:
    def __init__(self, rules: Rules):
        self.rules = rules

    def lock_book(self, session: Session, book_id: int) -> Book:
        return locks.lock_book(session, book_id)

    def out_columns(self, book_id):
        return open_loans_query(book_id).scalar_subquery(), set_aside_query(book_id).scalar_subquery()

    def copies_changing(self, session: Session, actor: int | None, book: Book, copies: int | None) -> None:
        """Lapsed holds expire first; then copies may not drop below those on loan and set aside."""
        state = settle(session, book, self.rules, actor)
        if copies is not None and copies < state.on_loan + state.set_aside:
            on_loan, held = state.on_loan, state.set_aside
            refusal = Refused(
                "copies_on_loan",
                f"{on_loan} copies are on loan"
                + (f" and {held} set aside for holds" if held else "")
                + f"; copies cannot drop to {copies}.",
                {"copies": copies, "onLoan": on_loan, "setAside": held},
            )
            refusal.keeps_changes = True  # the settlement stands
            raise refusal

    def copies_changed(self, session: Session, actor: int | None, book: Book) -> None:
        settle(session, book, self.rules, actor)  # more copies: the queue moves


def includeme(config):
    config.registry.registerUtility(CirculationStock(config.registry["booknexus.rules"]), IStock)
