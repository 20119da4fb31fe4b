"""torchmetrics Metrics for correspondence benchmarks; every one is DDP-correct (sum or cat states).  Counts and
means use torchmetrics.aggregation (SumMetric, MeanMetric)."""

from corrlab.metrics.endpoint_error import EndpointError
from corrlab.metrics.error_auc import ErrorAUC
from corrlab.metrics.flow_outliers import FlowOutlierRate
from corrlab.metrics.semantic_pck import SemanticPCK
from corrlab.metrics.threshold_accuracy import ThresholdAccuracy

__all__ = ["EndpointError", "ErrorAUC", "FlowOutlierRate", "SemanticPCK", "ThresholdAccuracy"]
