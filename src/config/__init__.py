"""Configuration: structured schemas registered in Hydra's ConfigStore, resolvers and override checks."""
