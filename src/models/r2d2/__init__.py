"""R2D2 (naver/r2d2): the released networks, their checkpoint loader, multi-scale keypoints, mutual-NN matching."""
