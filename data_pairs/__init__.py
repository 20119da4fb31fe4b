"""Training pair-list generation (python -m corrlab.data_pairs.<command>)."""
