"""ISBNs as people print them: ``ISBN 978-0-06-088328-7``, ``0 306 40615 2``, ``030640615x``.

What is stored is the normalised form: the 10 or 13 characters without prefix, hyphens or
spaces, ``X`` in upper case, its check digit verified. An ISBN-10 and the ISBN-13 it became
(``978`` + its first nine digits) name the same book, so the catalogue holds only one of them.
"""

import re

PREFIX = re.compile(r"^ISBN(?:-1[03])?:? ?", re.IGNORECASE)
SEPARATORS = re.compile(r"[- ]")
COMPACT = re.compile(r"^(?:[0-9]{9}[0-9X]|97[89][0-9]{10})$")


class InvalidIsbn(ValueError):
    pass


def _check_10(first_nine: str) -> str:
    total = sum((10 - i) * int(d) for i, d in enumerate(first_nine))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _check_13(first_twelve: str) -> str:
    total = sum((3 if i % 2 else 1) * int(d) for i, d in enumerate(first_twelve))
    return str((10 - total % 10) % 10)


def normalise(entered: str) -> str:
    compact = SEPARATORS.sub("", PREFIX.sub("", entered.strip())).upper()
    if not COMPACT.match(compact):
        raise InvalidIsbn(
            f"{entered!r} is not an ISBN: 10 digits (the last may be X) or 13 starting 978/979."
        )
    expected = _check_10(compact[:9]) if len(compact) == 10 else _check_13(compact[:12])
    if compact[-1] != expected:
        raise InvalidIsbn(
            f"The check digit of {entered!r} is wrong: {compact[:-1]}{expected} would be right."
        )
    return compact


def equivalents(isbn: str) -> tuple[str, ...]:
    """The normalised forms naming the same book: the ISBN itself, and its ISBN-10 or -13 twin."""
    if len(isbn) == 10:
        twelve = "978" + isbn[:9]
        return (isbn, twelve + _check_13(twelve))
    if isbn.startswith("978"):
        return (isbn, isbn[3:12] + _check_10(isbn[3:12]))
    return (isbn,)  # 979: no ISBN-10 ever
