"""Operations: the startup repair, the full repair, the foreign keys, the console scripts."""


def includeme(config):
    config.include(".startup")  # repair and constraint check at startup, behind the open port
