"""The JSON of a branch, for every view that shows one."""

from booknexus.branches.models import Branch
from booknexus.db.schema import timestamp


def serialize_branch(branch: Branch, default_code: str) -> dict:
    return {
        "id": branch.id,
        "code": branch.code,
        "name": branch.name,
        "isPickupLocation": branch.is_pickup_location,
        "isDefault": branch.code == default_code,
        "createdAt": timestamp(branch.created_at),
        "updatedAt": timestamp(branch.updated_at),
    }
