"""The accounts' resources: who may read and change a user."""

from booknexus.accounts.roles import OwnedBy, as_id


class UserResource(OwnedBy):
    """/users/{id}: members read and update themselves."""

    grants = ("view", "edit")

    def owner(self):
        return as_id(self.request.matchdict.get("id"))
