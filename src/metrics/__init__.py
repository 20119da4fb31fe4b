"""torchmetrics Metrics for correspondence benchmarks; every one is DDP-correct (sum or cat states)."""

from corrlab.metrics.count import Count
from corrlab.metrics.endpoint_error import EndpointError
from corrlab.metrics.error_auc import ErrorAUC
from corrlab.metrics.mean_value import MeanValue
from corrlab.metrics.semantic_pck import SemanticPCK
from corrlab.metrics.threshold_accuracy import ThresholdAccuracy

__all__ = ["Count", "EndpointError", "ErrorAUC", "MeanValue", "SemanticPCK", "ThresholdAccuracy"]
