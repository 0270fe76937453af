"""Users: the library's readers."""


def includeme(config):
    config.add_route("users", "/users")
    config.add_route("user", "/users/{id}", factory="booknexus.security.UserResource")
