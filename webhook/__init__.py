"""netguard: a Kubernetes admission webhook that keeps LoadBalancer Services behind default-deny
NetworkPolicies and labels Services and NetworkPolicies for Security and Ops.

The package face defines nothing. Its layers, each a package, import only downward
(tests/test_layers.py keeps it so; docs/design.md draws them):

  cli        the `netguard` command: serve, certs, manifests, check, audit
  serve      admission with live confirmation, WSGI endpoints, Flask app, audit log, metrics, gunicorn/TLS
  inventory  cluster state: offline, live list+watch, one view builder, one Kubernetes access module
  wire       AdmissionReview v1: parse, build the response, the JSON codec
  core       pure decisions: request, outcomes, rules and their registry, views, labels, messages, settings
"""
