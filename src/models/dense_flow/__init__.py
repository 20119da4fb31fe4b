"""Coarse-to-fine dense flow networks (GLU-Net, PWC-Net) with plain or GOCor correlation volumes."""
