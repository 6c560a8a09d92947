"""The `netguard` command: serve, certs, manifests, check, audit."""
