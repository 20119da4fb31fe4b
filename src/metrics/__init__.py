"""torchmetrics Metrics for correspondence benchmarks; every one is DDP-correct (sum or cat states)."""

from src.metrics.count import Count
from src.metrics.endpoint_error import EndpointError
from src.metrics.error_auc import ErrorAUC
from src.metrics.mean_value import MeanValue
from src.metrics.semantic_pck import SemanticPCK
from src.metrics.threshold_accuracy import ThresholdAccuracy

__all__ = ["Count", "EndpointError", "ErrorAUC", "MeanValue", "SemanticPCK", "ThresholdAccuracy"]
