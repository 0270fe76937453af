import re
from datetime import datetime

from sqlalchemy import CheckConstraint, String, true
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.db.schema import Base, UTCDateTime, utcnow

# a branch's code as stored: upper-case, so the unique constraint holds whatever the case it
# was typed in (revision 0016 checks the same form in the database)
CODE = re.compile(r"[A-Z0-9-]{1,16}")


def normalise_code(code: str) -> str:
    return code.strip().upper()


class Branch(Base):
    """A branch of the library; one (``booknexus.branch.default_code``) is the default."""

    __tablename__ = "Branches"
    __table_args__ = (
        CheckConstraint("code ~ '^[A-Z0-9-]{1,16}$'", name="code_form").ddl_if(dialect="postgresql"),
        CheckConstraint(
            "length(code) BETWEEN 1 AND 16 AND code NOT GLOB '*[^A-Z0-9-]*'", name="code_form"
        ).ddl_if(dialect="sqlite"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    # readers may collect their holds here
    is_pickup_location: Mapped[bool] = mapped_column("isPickupLocation", default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)
