"""The web's shared plumbing: database sessions, the error contract, the JSON views, request
checks, the security policy and the health check. It knows nothing of the library."""
