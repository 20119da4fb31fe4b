"""Patch2Pix and NCNet networks: stride-8 ResNet-34, neighbourhood consensus, coarse matches, pixel regressors."""
