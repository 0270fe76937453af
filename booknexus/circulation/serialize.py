"""The JSON of a checkout, a hold and an event: one serializer per kind, for every view."""

from booknexus.circulation.eventlog.streams import LOGS, Stream
from booknexus.circulation.models import Checkout, Hold
from booknexus.db.schema import timestamp


def serialize_checkout(checkout: Checkout) -> dict:
    return {
        "id": checkout.id,
        "userId": checkout.user_id,
        "bookId": checkout.book_id,
        "checkedOutAt": timestamp(checkout.checked_out_at),
        "dueAt": timestamp(checkout.due_at),
        "returnedAt": timestamp(checkout.returned_at),
        "renewals": checkout.renewals,
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
