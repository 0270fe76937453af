"""The items a library owns: adding them, finding them by barcode, and the changes a librarian
makes by hand (missing, withdrawn, found, moved, relabelled).

Every change takes the item's book's lock first (``locks``, step 2, then the item, step 3)
and is logged in the item log, with its reason. Item events carry no reader and no actor: a
reader's own check-out changes an item too, and the loan and hold logs are where who did
what is kept (and forgotten, when a reader is erased).

``"Books".copies`` stays what it meant: the items the library owns (every one not
withdrawn), kept by these commands under the book's lock so that reading a book costs no
count.
"""

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from booknexus.catalog.models import Book
from booknexus.circulation import locks
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog.streams import CREATED, EDITED, FOUND, MOVED, STATUS_CHANGED, WITHDRAWN
from booknexus.circulation.models import (
    AVAILABLE,
    BARCODE,
    MISSING,
    UNACCOUNTED,
    Item,
    normalise_barcode,
)
from booknexus.circulation.models import WITHDRAWN as WITHDRAWN_STATUS
from booknexus.refusals import Invalid, NotFound, Refused

PREFIX_SETTING = "booknexus.items.barcode_prefix"

# what a librarian may set by hand, from which statuses: loans, holds and transits change an
# item's status only through the desk's commands
BY_HAND = {
    MISSING: (AVAILABLE, MISSING),
    WITHDRAWN_STATUS: (AVAILABLE, *UNACCOUNTED, WITHDRAWN_STATUS),
    AVAILABLE: (*UNACCOUNTED, WITHDRAWN_STATUS, AVAILABLE),  # found, or taken back into stock
}


def barcode_prefix(settings: dict) -> str:
    prefix = normalise_barcode(str(settings.get(PREFIX_SETTING, "BN")))
    if len(prefix) > 16 or (prefix and not BARCODE.fullmatch(prefix)):
        raise ValueError(f"{PREFIX_SETTING} = {prefix!r}: give 0-16 letters, digits or -")
    return prefix


def valid_barcode(entered: str, field: str = "barcode") -> str:
    barcode = normalise_barcode(entered)
    if not BARCODE.fullmatch(barcode):
        raise Invalid(
            "invalid_barcode",
            f"{entered!r} is not a barcode: give 1-32 letters, digits or -.",
            {"field": field, "value": entered},
        )
    return barcode


@dataclass(frozen=True)
class ItemRef:
    id: int
    book_id: int
    # the item on the hold shelf for the reader's own ready hold on that book, if a reader is named
    shelved_for_reader: int | None = None


# compiled once, values bound: the first statement of every scan at the desk
FIND_ITEM = text("""
    SELECT i.id, i."bookId",
           (SELECT h."itemId" FROM "Holds" h
            WHERE h."userId" = :user AND h."bookId" = i."bookId" AND h.status = 'ready') AS shelved
    FROM "Items" i WHERE i.barcode = :barcode
""")


def find_item(
    session: Session, barcode: str, field: str = "itemBarcode", reader: int | None = None
) -> ItemRef:
    """The item a scan names (any case), before any lock (items never change book); with a
    reader, in the same round trip, the item on the hold shelf for them."""
    barcode = valid_barcode(barcode, field)
    found = session.execute(FIND_ITEM, {"barcode": barcode, "user": reader}).first()
    if found is None:
        raise NotFound("item", barcode, key="barcode")
    return ItemRef(*found)


def ensure_barcode_free(session: Session, barcode: str, item_id: int | None = None) -> None:
    holder = session.scalar(select(Item.id).where(Item.barcode == barcode))
    if holder is not None and holder != item_id:
        raise Refused(
            "barcode_taken",
            f"Item {holder} has the barcode {barcode}.",
            {"barcode": barcode, "itemId": holder},
        )


def log_item(session: Session, item: Item, type_: str, **extra) -> None:
    session.flush()
    eventlog.append(session, item, type_, actor=None, **extra)


def _generated_barcodes(session: Session, book_id: int, prefix: str, count: int) -> list[str]:
    """``<prefix><book id>-<n>``, as revision 0017 labelled the copies it found: n counts on
    from the book's items (the book is locked; a label taken by hand is skipped)."""
    n = session.scalar(select(func.count()).where(Item.book_id == book_id))
    barcodes = []
    while len(barcodes) < count:
        n += 1
        candidate = f"{prefix}{book_id}-{n}"
        if session.scalar(select(Item.id).where(Item.barcode == candidate)) is None:
            barcodes.append(candidate)
    return barcodes


def add_item(
    session: Session,
    book: Book,
    branch_id: int,
    barcode: str,
    *,
    item_type: str = "book",
    call_number: str | None = None,
    reason: str = "added",
) -> Item:
    """One item of a locked book, on the shelf at ``branch_id``; the book owns one copy more."""
    ensure_barcode_free(session, barcode)
    item = Item(
        book_id=book.id,
        barcode=barcode,
        home_branch_id=branch_id,
        current_branch_id=branch_id,
        item_type=item_type,
        call_number=call_number,
        status=AVAILABLE,
    )
    session.add(item)
    log_item(session, item, CREATED, reason=reason)
    return item


def add_copies(session: Session, book: Book, count: int, branch_id: int, prefix: str) -> list[Item]:
    """``count`` items with generated barcodes (a new book's copies, or more of them)."""
    return [
        add_item(session, book, branch_id, barcode, reason="copies")
        for barcode in _generated_barcodes(session, book.id, prefix, count)
    ]


def owned(session: Session, book_id: int) -> int:
    return session.scalar(
        select(func.count()).where(Item.book_id == book_id, Item.status != WITHDRAWN_STATUS)
    )


def withdraw_copies(session: Session, book: Book, count: int) -> list[Item]:
    """Withdraw ``count`` items on the shelf, the newest first; fewer if fewer are there."""
    shelved = locks.lock_shelved_items(session, book.id, count)
    for item in shelved:
        item.status = WITHDRAWN_STATUS
        log_item(session, item, WITHDRAWN, reason="copies")
    return shelved


def set_status_by_hand(session: Session, book: Book, item: Item, status: str) -> None:
    """A librarian marks a locked item missing or withdrawn, or found (``available``)."""
    allowed = BY_HAND.get(status)
    if allowed is None or item.status not in allowed:
        raise Refused(
            "item_status_change",
            f"Item {item.id} is {item.status}: a librarian cannot make it {status} by hand"
            + ("; the desk's commands change loans, holds and transits." if allowed else "."),
            {"itemId": item.id, "status": item.status, "requested": status},
        )
    if status == item.status:
        return
    was = item.status
    if status == WITHDRAWN_STATUS and book.copies <= 1:
        raise Refused(
            "last_copy",
            f"Item {item.id} is the last copy of book {book.id}: delete the book instead.",
            {"itemId": item.id, "bookId": book.id},
        )
    item.status = status
    if status == WITHDRAWN_STATUS:
        book.copies -= 1
        log_item(session, item, WITHDRAWN, reason="by_hand", was=was)
    elif was == WITHDRAWN_STATUS:
        book.copies += 1
        log_item(session, item, STATUS_CHANGED, reason="reinstated", was=was)
    elif was in UNACCOUNTED:
        log_item(session, item, FOUND, reason="by_hand", was=was)
    else:
        log_item(session, item, STATUS_CHANGED, reason="by_hand", was=was)


def move(session: Session, item: Item, home: int | None, current: int | None) -> None:
    """A librarian changes where a locked item belongs or is (a transfer of stock, a correction)."""
    changed = False
    if home is not None and home != item.home_branch_id:
        item.home_branch_id, changed = home, True
    if current is not None and current != item.current_branch_id:
        item.current_branch_id, changed = current, True
    if changed:
        log_item(session, item, MOVED, reason="by_hand")


def relabel(session: Session, item: Item, **fields) -> None:
    """A librarian changes a locked item's barcode, item type or call number."""
    changed = {name: value for name, value in fields.items() if getattr(item, name) != value}
    for name, value in changed.items():
        setattr(item, name, value)
    if changed:
        log_item(session, item, EDITED, reason="by_hand")


def get_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound("item", item_id)
    return item


def lock_item_and_book(session: Session, item_id: int) -> tuple[Book, Item]:
    """The item's book, then the item (lock order, steps 2 and 3)."""
    book = locks.lock_book_of(session, Item, item_id)
    return book, locks.lock_item(session, item_id)
