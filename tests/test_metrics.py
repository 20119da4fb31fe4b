"""Every metric against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from corrlab.metrics import EndpointError, ErrorAUC, SemanticPCK, ThresholdAccuracy


def test_threshold_accuracy_averages_per_pair_fractions():
    metric = ThresholdAccuracy([1, 3], "mma")
    metric.update(torch.tensor([0.5, 2.0, 4.0]))  # 1/3 under 1 px, 2/3 under 3 px
    metric.update(torch.tensor([]))  # no matches: 0
    metric.update(torch.tensor([1.0]))  # exactly at the threshold counts
    assert metric.compute() == pytest.approx({"mma@1": 4 / 9, "mma@3": 5 / 9})


def test_error_auc_follows_the_trapezoid_definition():
    metric = ErrorAUC([1, 2], "hauc", "hacc")
    metric.update(torch.tensor([0.0, 1.0]))
    metric.update(torch.tensor([2.0, math.inf]))
    # curve: (0,0) (0,.25) (1,.5) (2,.75); area to 1 stops at the error equal to 1 -> .25;
    # area to 2: .375 + .5 = .875, divided by 2
    assert metric.compute() == pytest.approx({"hauc@1": 0.25, "hauc@2": 0.4375, "hacc@1": 0.5, "hacc@2": 0.75})


def test_error_auc_of_perfect_and_failed_pairs():
    perfect, failed = ErrorAUC([5], "pose_auc"), ErrorAUC([5], "pose_auc")
    perfect.update(torch.zeros(3))
    failed.update(torch.full((3,), math.inf))
    assert perfect.compute() == {"pose_auc@5": 1.0}
    assert failed.compute() == {"pose_auc@5": 0.0}


def test_endpoint_error_per_image_and_pooled():
    metric = EndpointError([1, 3, 5])
    metric.update(torch.tensor([0.5, 2.0, 6.0]))
    metric.update(torch.tensor([1.0]))
    metric.update(torch.tensor([]))  # no valid GT point: skipped
    assert metric.compute() == pytest.approx(
        {
            "aepe": (8.5 / 3 + 1.0) / 2,
            "pck@1": (1 / 3 + 1) / 2,
            "pck@3": (2 / 3 + 1) / 2,
            "pck@5": (2 / 3 + 1) / 2,
            "pck_pooled@1": 2 / 4,
            "pck_pooled@3": 3 / 4,
            "pck_pooled@5": 3 / 4,
        }
    )


def test_semantic_pck_per_image_and_per_keypoint():
    metric = SemanticPCK([0.05, 0.1])
    metric.update(torch.tensor([1.0, 5.0, 12.0]), threshold_base=100)  # thresholds 5 and 10 px
    metric.update(torch.tensor([3.0]), threshold_base=20)  # thresholds 1 and 2 px
    assert metric.compute() == pytest.approx(
        {"pck@0.05": (2 / 3 + 0) / 2, "pck@0.1": (2 / 3 + 0) / 2, "pck_kpt@0.05": 2 / 4, "pck_kpt@0.1": 2 / 4}
    )


def test_metrics_merge_states_like_ddp_ranks():
    """Two 'ranks' merged by torchmetrics give the same result as one process seeing everything."""
    errors = [torch.tensor([0.5, 4.0]), torch.tensor([2.0]), torch.tensor([9.0, 0.1, 0.2])]
    single, rank0, rank1 = (ThresholdAccuracy([1, 3], "mma") for _ in range(3))
    for e in errors:
        single.update(e)
    rank0.update(errors[0])
    rank1.update(errors[1])
    rank1.update(errors[2])
    rank0.merge_state(rank1)
    assert rank0.compute() == pytest.approx(single.compute())
