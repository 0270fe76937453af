"""The catalogue: the titles the library holds, how many copies of each, and its search."""


def includeme(config):
    config.add_route("books", "/books")
    config.add_route("book", "/books/{id}")
