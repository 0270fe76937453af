"""BookNexus: the back end of a library, as a Pyramid JSON API.

The app factory is ``booknexus.config:main``. This package imports nothing: ``booknexus-serve``'s
master imports it, and the workers SIGHUP starts would inherit whatever it held.
"""
