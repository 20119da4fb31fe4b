"""GOCor (Truong et al., NeurIPS 2020): correlation volumes computed by an optimised filter map instead of the raw
reference features, globally (GLU-Net level 4) and in a 9 x 9 window (GLU-Net levels 3-1, PWC-Net)."""

from corrlab.models.gocor.global_gocor import GlobalGOCor
from corrlab.models.gocor.local_gocor import LocalGOCor

__all__ = ["GlobalGOCor", "LocalGOCor"]
