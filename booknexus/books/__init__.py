"""Books: titles the library holds, and how many copies of each."""


def includeme(config):
    config.add_route("books", "/books")
    config.add_route("book", "/books/{id}")
