class BookDeleted:
    """Notified before a book's row is deleted, inside the request's transaction."""

    def __init__(self, book, request):
        self.book = book
        self.request = request
