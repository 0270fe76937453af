"""The JSON of a user, for every view that shows one."""

from booknexus.accounts.models import User


def serialize_user(user: User) -> dict:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "keepHistory": user.keep_history,
        "createdAt": user.created_at,
        "updatedAt": user.updated_at,
    }
