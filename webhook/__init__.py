"""netguard: a Kubernetes admission webhook that keeps LoadBalancer Services behind default-deny
NetworkPolicies and labels Services and NetworkPolicies for Security and Ops.

The package face defines nothing; see the modules:
  review, outcome, netpol, labels, patches, rules, decide  -- the pure decision core
  inventory, offline, cluster, watch                       -- cluster state
  objects                                                  -- Kubernetes objects read from files
  admission, app, serving, audit, metrics, monitor          -- the server
  check, scan, report, manifests, certs, cli               -- the tools
"""
