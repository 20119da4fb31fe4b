"""LightningModules, one per method, all implementing the MatchingModule contract."""
