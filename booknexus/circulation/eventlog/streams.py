"""The two logs, described once so that appending, tailing and replay are each written once.

Checkouts and holds each have their own append-only log table ("CheckoutEvents",
"HoldEvents"), with the same columns but the record's id (``key``), and the same rules.
A stream says which table records what, and which columns of a record its events carry.
"""

from dataclasses import dataclass

from sqlalchemy import Table, inspect

from booknexus.circulation.eventlog.models import CheckoutEvent, HoldEvent, ItemEvent
from booknexus.circulation.models import Checkout, Hold, Item

# event types
CHECKED_OUT = "checked_out"
RENEWED = "renewed"
RETURNED = "returned"
LOST = "lost"  # a loan closed: its reader declared the item lost
CLAIMED_RETURNED = "claimed_returned"  # a loan closed: its reader says they returned it
PLACED = "placed"
READY = "ready"
SENT = "in_transit"  # a hold's item is on its way to the pickup branch
FULFILLED = "fulfilled"
CANCELLED = "cancelled"
EXPIRED = "expired"
DELETED = "deleted"  # the record is gone (by the app, or by hand: reason "external")
PURGED = "purged"  # an orphan removed by the cleanup or the FK migration
IMPORTED = "imported"  # a record that existed before its log did (or was inserted by hand)
UPDATED = "updated"  # a record changed by hand (reason "external")
# its reader replaced by the anonymous one (reason "policy", "erasure" or "reader_choice"); a
# record still in its table keeps its state, one already gone is marked ``"gone": true``
ANONYMISED = "anonymised"
ENDING = (DELETED, PURGED)  # after these the record no longer exists
# an item's events (besides IMPORTED, UPDATED, DELETED and PURGED, which every log has)
CREATED = "created"
STATUS_CHANGED = "status_changed"
MOVED = "moved"  # its home or current branch changed by a librarian
EDITED = "edited"  # its barcode, item type or call number changed by a librarian
TRANSIT_SENT = "transit_sent"
TRANSIT_RECEIVED = "transit_received"
CAPTURED = "captured"  # set aside for a hold (on the hold shelf, or in transit to it)
FOUND = "found"  # a missing, lost or claimed-returned item seen again
WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Stream:
    name: str
    record: type  # the mapped class whose rows the log records
    event: type  # the mapped class of its log
    key: str  # the log's column holding the record's id
    timestamps: tuple[str, ...]  # record columns carried in ``data`` as ISO 8601 text
    values: tuple[str, ...]  # record columns carried in ``data`` as they are
    # LOCK TABLE list: a stream also locks every log before it, always in this order, so two
    # transactions appending to both logs can never wait for each other's lock
    lock_tables: tuple[str, ...]
    # the columns naming what a record belongs to, in the record and in its log alike
    subjects: tuple[str, ...] = ("userId", "bookId")

    @property
    def records(self) -> Table:
        return self.record.__table__

    @property
    def events(self) -> Table:
        return self.event.__table__

    @property
    def state_fields(self) -> tuple[str, ...]:
        return self.timestamps + self.values

    def attribute(self, column: str, mapped: type | None = None) -> str:
        """The Python attribute of ``mapped`` (default: the record class) mapped to ``column``."""
        mapped = mapped or self.record
        return inspect(mapped).get_property_by_column(mapped.__table__.c[column]).key


CHECKOUTS = Stream(
    name="checkouts",
    record=Checkout,
    event=CheckoutEvent,
    key="checkoutId",
    timestamps=("checkedOutAt", "dueAt", "returnedAt"),
    values=("renewals", "itemId", "branchId", "outcome"),
    lock_tables=('"CheckoutEvents"',),
)
HOLDS = Stream(
    name="holds",
    record=Hold,
    event=HoldEvent,
    key="holdId",
    timestamps=("placedAt", "readyAt", "expiresAt", "endedAt"),
    values=("status", "pickupBranchId", "itemId"),
    lock_tables=('"CheckoutEvents"', '"HoldEvents"'),
)
ITEMS = Stream(
    name="items",
    record=Item,
    event=ItemEvent,
    key="itemId",
    timestamps=("transitSentAt",),
    values=(
        "barcode",
        "homeBranchId",
        "currentBranchId",
        "transitToBranchId",
        "itemType",
        "callNumber",
        "status",
    ),
    lock_tables=('"CheckoutEvents"', '"HoldEvents"', '"ItemEvents"'),
    subjects=("bookId",),
)
# the logs of records that belong to readers (the ones reader privacy works on)
STREAMS = {stream.record: stream for stream in (CHECKOUTS, HOLDS)}
# every log, in lock order
LOGS = {stream.record: stream for stream in (CHECKOUTS, HOLDS, ITEMS)}
