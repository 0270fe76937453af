"""The JSON of an item, a checkout, a hold and an event: one serializer per kind, for every view."""

from booknexus.circulation.eventlog.streams import LOGS, Stream
from booknexus.circulation.models import Checkout, Hold, Item
from booknexus.db.schema import timestamp


def serialize_item(item: Item) -> dict:
    """An item as anyone may see it: where it is and whether it is there, never whose it is."""
    return {
        "id": item.id,
        "bookId": item.book_id,
        "barcode": item.barcode,
        "homeBranchId": item.home_branch_id,
        "currentBranchId": item.current_branch_id,
        "transitToBranchId": item.transit_to_branch_id,
        "transitSentAt": timestamp(item.transit_sent_at),
        "itemType": item.item_type,
        "callNumber": item.call_number,
        "status": item.status,
        "createdAt": timestamp(item.created_at),
        "updatedAt": timestamp(item.updated_at),
    }


def serialize_checkout(checkout: Checkout) -> dict:
    return {
        "id": checkout.id,
        "userId": checkout.user_id,
        "bookId": checkout.book_id,
        "checkedOutAt": timestamp(checkout.checked_out_at),
        "dueAt": timestamp(checkout.due_at),
        "returnedAt": timestamp(checkout.returned_at),
        "renewals": checkout.renewals,
        "itemId": checkout.item_id,
        "branchId": checkout.branch_id,
        "outcome": checkout.outcome,
        "createdAt": timestamp(checkout.created_at),
        "updatedAt": timestamp(checkout.updated_at),
    }


def serialize_hold(hold: Hold, position: int | None) -> dict:
    return {
        "id": hold.id,
        "userId": hold.user_id,
        "bookId": hold.book_id,
        "status": hold.status,
        "position": position,
        "placedAt": timestamp(hold.placed_at),
        "readyAt": timestamp(hold.ready_at),
        "expiresAt": timestamp(hold.expires_at),
        "pickupBranchId": hold.pickup_branch_id,
        "itemId": hold.item_id,
    }


def serializer(stream: Stream):
    """An event of ``stream``'s log: its position, its record, what that belongs to (the
    reader and the book; an item's book alone), then what happened."""
    named = [(name, stream.attribute(name, stream.event)) for name in (stream.key, *stream.subjects)]

    def serialize_event(event) -> dict:
        serialized = {"position": event.id}
        for name, attribute in named:
            serialized[name] = getattr(event, attribute)
        serialized["type"] = event.type
        serialized["occurredAt"] = timestamp(event.occurred_at)
        serialized["data"] = event.data
        return serialized

    return serialize_event


SERIALIZERS = {stream: serializer(stream) for stream in LOGS.values()}
