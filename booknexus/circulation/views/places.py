"""The branch a circulation call happens at: the one it names, else the default branch."""

from booknexus.branches.queries import default_branch, get_branch

DEFAULT_BRANCH_ID = "booknexus.circulation.default_branch_id"


def branch_id_of(request, branch_id: int | None) -> int:
    """A named branch must exist (404 otherwise); none named is the default branch, whose id
    is read once per process: its code is fixed by the setting and branches are never deleted."""
    if branch_id is not None:
        return get_branch(request.dbsession, branch_id).id
    registry = request.registry
    if DEFAULT_BRANCH_ID not in registry:
        registry[DEFAULT_BRANCH_ID] = default_branch(request.dbsession, registry.settings).id
    return registry[DEFAULT_BRANCH_ID]
