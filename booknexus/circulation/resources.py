"""Circulation's resources: whose loans, holds and events a request is about."""

from sqlalchemy import select

from booknexus.accounts.roles import OwnedBy, as_id
from booknexus.circulation.eventlog.models import CheckoutEvent, HoldEvent
from booknexus.circulation.eventlog.streams import STREAMS
from booknexus.circulation.models import Checkout, Hold
from booknexus.web.security import json_body


class RecordResource(OwnedBy):
    """A record named by the path's id, owned by its user; once deleted, its log still
    says whose it was."""

    record: type
    event: type

    def owner(self):
        record_id = as_id(self.request.matchdict.get("id"))
        if record_id is None:
            return None
        session = self.request.dbsession
        owner = session.scalar(select(self.record.user_id).where(self.record.id == record_id))
        if owner is None:  # deleted: its history belongs to the user its latest event names,
            # as the row itself did while it lived (a loan moved to another reader, then deleted)
            key = self.event.__table__.c[STREAMS[self.record].key]
            latest = select(self.event.user_id).where(key == record_id).order_by(self.event.id.desc())
            owner = session.scalar(latest.limit(1))
        return owner


class CheckoutResource(RecordResource):
    """/checkouts/{id}[/renew|/events]: members read and renew their own loans."""

    grants = ("view", "renew")
    record, event = Checkout, CheckoutEvent


class HoldResource(RecordResource):
    """/holds/{id}[/events]: members read and cancel their own holds."""

    grants = ("view", "cancel")
    record, event = Hold, HoldEvent


class LoansOf(OwnedBy):
    """/checkouts, /checkout-events: members list their own (``userId=<self>``) and check
    out for themselves (``{"userId": <self>}``)."""

    grants = ("view", "checkout")

    def owner(self):
        if self.request.method == "POST":
            return as_id(json_body(self.request).get("userId"))
        return as_id(self.request.GET.get("userId"))


class HoldsOf(LoansOf):
    """/holds, /hold-events: members list their own holds and place holds for themselves."""

    grants = ("view", "hold")
