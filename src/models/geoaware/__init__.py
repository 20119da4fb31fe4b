"""GeoAware-SC (Zhang et al., CVPR 2024): post-processor, correspondence read-out, feature cache and letterbox."""
