"""What happens to a book, for whoever else must act on it in the same transaction."""


class BookEvent:
    def __init__(self, book, request):
        self.book = book
        self.request = request


class BookChanging(BookEvent):
    """Notified under the book's row lock before ``changes`` (the fields about to be set)
    are applied; a subscriber may refuse them by raising."""

    def __init__(self, book, changes: dict, request):
        super().__init__(book, request)
        self.changes = changes


class BookChanged(BookEvent):
    """Notified after a change to a book is flushed, inside the request's transaction."""


class BookDeleted(BookEvent):
    """Notified before a book's row is deleted, inside the request's transaction."""
