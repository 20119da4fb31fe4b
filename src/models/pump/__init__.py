"""PUMP matching algorithm (Revaud et al., CVPR 2022): single-scale, multi-scale, recursive, post-filter."""
