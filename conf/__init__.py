"""corrlab's Hydra configs, shipped inside the package so a wheel install finds them."""
