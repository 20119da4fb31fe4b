"""GCM (Han et al., arXiv 2403.05388): DFM's coarse-to-fine dense matcher with flexible hierarchical refinement
and a distilled patch descriptor (the R2D2 student) for the final full-resolution step."""
