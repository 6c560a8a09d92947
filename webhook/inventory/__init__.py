"""Cluster state: the inventory interface, the offline and live inventories, Kubernetes access."""
