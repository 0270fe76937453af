"""The JSON of a checkout, a hold and an event: one serializer per kind, for every view."""

from booknexus.circulation.eventlog.streams import STREAMS, Stream
from booknexus.circulation.models import Checkout, Hold


def serialize_checkout(checkout: Checkout) -> dict:
    return {
        "id": checkout.id,
        "userId": checkout.user_id,
        "bookId": checkout.book_id,
        "checkedOutAt": checkout.checked_out_at,
        "dueAt": checkout.due_at,
        "returnedAt": checkout.returned_at,
        "renewals": checkout.renewals,
        "createdAt": checkout.created_at,
        "updatedAt": checkout.updated_at,
    }


def serialize_hold(hold: Hold, position: int | None) -> dict:
    return {
        "id": hold.id,
        "userId": hold.user_id,
        "bookId": hold.book_id,
        "status": hold.status,
        "position": position,
        "placedAt": hold.placed_at,
        "readyAt": hold.ready_at,
        "expiresAt": hold.expires_at,
    }


def serializer(stream: Stream):
    key = stream.attribute(stream.key, stream.event)

    def serialize_event(event) -> dict:
        return {
            "position": event.id,
            stream.key: getattr(event, key),
            "userId": event.user_id,
            "bookId": event.book_id,
            "type": event.type,
            "occurredAt": event.occurred_at,
            "data": event.data,
        }

    return serialize_event


SERIALIZERS = {stream: serializer(stream) for stream in STREAMS.values()}
