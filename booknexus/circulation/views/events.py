from functools import cache

from sqlalchemy import bindparam, exists, select

from booknexus.accounts.roles import MANAGE
from booknexus.circulation.eventlog.streams import CHECKOUTS, HOLDS, ITEMS, Stream
from booknexus.circulation.serialize import SERIALIZERS
from booknexus.db.schema import attribute_columns
from booknexus.web.api import api_view, keyset_rows, keyset_statement, path_id, query_params
from booknexus.web.errors import not_found
from booknexus.web.reads import snapshot


@cache
def events_statement(stream: Stream, filters: tuple[str, ...], after: bool):
    """A page of ``stream``'s log filtered on these columns (bind parameters of their names):
    built once per combination, run with values."""
    events = stream.events
    statement = select(*attribute_columns(stream.event))  # rows, not objects: the read side
    for name in filters:
        statement = statement.where(events.c[name] == bindparam(name))
    return keyset_statement(statement, events.c.id, after)


def events_page(request, session, stream: Stream, **equal):
    """A page of ``stream``'s log in position order, the one way every log is tailed."""
    params = query_params(request)
    values = {name: value for name, value in equal.items() if value is not None}
    page = events_statement(stream, tuple(values), params.get("after") is not None)
    rows, next_id = keyset_rows(session.connection(), page, params["limit"], params.get("after"), values)
    serialize = SERIALIZERS[stream]
    return {"items": [serialize(row) for row in rows], "next": next_id}


def log_page(request, stream: Stream):
    """The whole log, filtered on its record, what that belongs to, and the event's type."""
    params = query_params(request)
    filters = (stream.key, *stream.subjects, "type")
    return events_page(request, request.dbsession, stream, **{name: params.get(name) for name in filters})


def history_page(request, stream: Stream):
    record_id = path_id(request)
    with snapshot(request) as session:  # two statements, one state of the log
        known = session.scalar(
            select(
                exists().where(stream.events.c[stream.key] == record_id)
                | exists().where(stream.records.c.id == record_id)
            )
        )
        if not known:
            raise not_found(stream.records.name.lower().rstrip("s"), record_id)
        return events_page(request, session, stream, **{stream.key: record_id})


@api_view(route_name="checkout_events", request_method="GET", permission="view")
def list_checkout_events(request):
    return log_page(request, CHECKOUTS)


@api_view(route_name="checkout_history", request_method="GET", permission="view")
def checkout_history(request):
    return history_page(request, CHECKOUTS)


@api_view(route_name="hold_events", request_method="GET", permission="view")
def list_hold_events(request):
    return log_page(request, HOLDS)


@api_view(route_name="hold_history", request_method="GET", permission="view")
def hold_history(request):
    return history_page(request, HOLDS)


# items belong to no reader: their log is the librarians' alone
@api_view(route_name="item_events", request_method="GET", permission=MANAGE)
def list_item_events(request):
    return log_page(request, ITEMS)


@api_view(route_name="item_history", request_method="GET", permission=MANAGE)
def item_history(request):
    return history_page(request, ITEMS)
