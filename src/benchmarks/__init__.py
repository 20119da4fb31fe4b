"""Evaluation protocols: dataset split + metrics + a recorded spec -> summary.json."""
