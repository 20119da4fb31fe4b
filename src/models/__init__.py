"""Network building blocks shared by the methods (backbones, matching heads, regressors)."""
