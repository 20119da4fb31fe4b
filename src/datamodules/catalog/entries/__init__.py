"""One module per dataset, each defining `ENTRY` (see catalog/registry.py)."""
