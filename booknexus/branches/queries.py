"""Lookups of branches, shared by views, the desk and scripts."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.branches.models import CODE, Branch, normalise_code
from booknexus.refusals import NotFound, Refused

DEFAULT_CODE = "booknexus.branch.default_code"
DEFAULT_NAME = "booknexus.branch.default_name"


def configured_default(settings: dict) -> str:
    """The default branch's code, as the setting names it (upper-cased, as codes are stored)."""
    code = normalise_code(str(settings.get(DEFAULT_CODE, "MAIN")))
    if not CODE.fullmatch(code):
        raise ValueError(f"{DEFAULT_CODE} = {code!r}: give 1-16 letters, digits or -")
    return code


def get_branch(session: Session, branch_id: int) -> Branch:
    branch = session.get(Branch, branch_id)
    if branch is None:
        raise NotFound("branch", branch_id)
    return branch


def default_branch(session: Session, settings: dict) -> Branch:
    """The branch a one-branch library works at, and every call that names none."""
    code = configured_default(settings)
    branch = session.scalars(select(Branch).where(Branch.code == code)).one_or_none()
    if branch is None:
        raise Refused(
            "default_branch_missing",
            f"No branch has the code {code} that {DEFAULT_CODE} names; create it or change the setting.",
            {"code": code},
        )
    return branch


def ensure_code_free(session: Session, code: str, branch_id: int | None = None) -> None:
    """Refuse a code another branch has (codes are stored upper-case: one comparison)."""
    holder = session.scalar(select(Branch.id).where(Branch.code == code))
    if holder is not None and holder != branch_id:
        raise Refused(
            "branch_code_taken", f"Branch {holder} has the code {code}.", {"code": code, "branchId": holder}
        )


def ensure_default_keeps_its_code(branch: Branch, code: str, settings: dict) -> None:
    """The default branch is found by the setting's code: changing its code alone would leave
    the library without one. Change the setting first; then the old branch is free to rename."""
    default = configured_default(settings)
    if branch.code == default and code != default:
        raise Refused(
            "default_branch_code",
            f"Branch {branch.id} is the default branch ({DEFAULT_CODE} = {default}); "
            "change the setting before its code.",
            {"id": branch.id, "code": default},
        )
