"""PWC-Net (Sun et al., CVPR 2018) as DenseMatching defines it, and PWC-Net-GOCor."""
