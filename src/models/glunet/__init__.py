"""GLU-Net (Truong et al., CVPR 2020) and GLU-Net-GOCor."""
