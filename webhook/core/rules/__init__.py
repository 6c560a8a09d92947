"""The validating rules, one module each; webhook/core/registry.py finds them."""
