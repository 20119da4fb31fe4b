"""LightningDataModules: one per dataset, all yielding batches of the corrlab batch contract."""
