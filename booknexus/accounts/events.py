"""What happens to an account, for whoever else must act on it in the same transaction."""

from sqlalchemy.orm import Session


class UserDeleted:
    """Notified before a user's row is deleted, in the transaction that deletes it, by
    ``actor``; the caller holds the user's lock. Subscribers (circulation) remove and log
    what belonged to them."""

    def __init__(self, user, session: Session, actor: int | None, registry):
        self.user = user
        self.session = session
        self.actor = actor
        self.registry = registry
