"""What the library's rules answer when they say no: domain exceptions, not HTTP errors.

Domain code (catalogue, accounts, circulation, operations) raises these; each adapter says
them its own way: the JSON API as its error contract (``web.errors``: ``NotFound`` 404,
``Invalid`` 400, ``Throttled`` 429, any other ``Refused`` 409), a console script as a
message and an exit code, a kiosk as a protocol-valid refusal.
"""


class Refused(Exception):
    """A rule refused the command: ``code`` is stable and machine-readable, ``message`` is
    for people, ``details`` says what the rule saw.

    ``keeps_changes``: what the command did before it was refused stands (the book's hold
    queue settled: lapsed holds expired, copies passed on), so the transaction commits
    that work rather than rolling it back; nothing the command itself asked for was done.
    """

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.keeps_changes = False


class NotFound(Refused):
    """The command names something that does not exist (or no longer does)."""

    def __init__(self, kind: str, id_, key: str = "id"):
        """``key``: what names it when not its id (an item's ``barcode``, a ``cardNumber``)."""
        super().__init__(f"{kind}_not_found", f"No {kind} with {key} {id_}.", {key: id_})
        self.kind = kind
        self.id = id_


class Invalid(Refused):
    """A value the rules cannot accept, whatever the state of the library."""


class Throttled(Refused):
    """Too many attempts: retry after ``retry_after`` seconds."""

    def __init__(self, code: str, message: str, details: dict | None = None, *, retry_after: int):
        super().__init__(code, message, details)
        self.retry_after = retry_after
