"""Circulation's answer to the catalogue: a book's open loans and ready holds, as columns
the catalogue's statements select beside each book (one round trip, one snapshot)."""

from booknexus.catalog.stock import STOCK
from booknexus.circulation.queries import open_loans_query, set_aside_query


def out_columns(book_id):
    return open_loans_query(book_id).scalar_subquery(), set_aside_query(book_id).scalar_subquery()


def includeme(config):
    config.registry[STOCK] = out_columns
