"""netguard: a Kubernetes admission webhook that keeps LoadBalancer Services behind default-deny
NetworkPolicies and labels Services and NetworkPolicies for Security and Ops.

The package face defines nothing; see the modules:
  review, outcome, netpol, labels, patches, rules, decide  -- the pure decision core
  inventory, offline                                       -- cluster state
  config, audit, certs, app, serving, cli                  -- the edges
"""
