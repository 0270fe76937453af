"""The catalogue: the titles the library holds, how many copies of each, and its search."""


def includeme(config):
    config.add_route("books", "/books")
    config.add_route("book", "/books/{id}")
    # the public catalogue's pages (catalog/pages.py)
    config.add_route("catalogue_home", "/")
    config.add_route("catalogue_book", "/catalogue/books/{id}")
    config.add_route("accessibility", "/accessibility")
