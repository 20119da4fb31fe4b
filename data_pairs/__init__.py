"""Training pair-list generation (python -m data_pairs.<command>)."""
