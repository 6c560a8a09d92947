"""The server: admission with live confirmation, WSGI endpoints, audit log, metrics, gunicorn/TLS."""
