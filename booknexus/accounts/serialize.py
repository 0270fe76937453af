"""The JSON of a user, for every view that shows one."""

from booknexus.accounts.models import User
from booknexus.db.schema import timestamp


def serialize_user(user: User) -> dict:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "keepHistory": user.keep_history,
        "cardNumber": user.card_number,
        "createdAt": timestamp(user.created_at),
        "updatedAt": timestamp(user.updated_at),
    }
