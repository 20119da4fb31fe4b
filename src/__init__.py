"""corrlab: one Lightning + Hydra harness to train and evaluate image-correspondence methods."""
