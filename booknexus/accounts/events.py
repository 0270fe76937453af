class UserDeleted:
    """Notified before a user's row is deleted, inside the request's transaction."""

    def __init__(self, user, request):
        self.user = user
        self.request = request
