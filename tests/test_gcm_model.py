"""GCM's student network, its loader, dense matching, hierarchical refinement and the keep-filter, against
independent computations (a hand-written conv chain, per-parent loops, hand-placed matches)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from corrlab.models.gcm.dense_matching import dense_feature_matching
from corrlab.models.gcm.matcher import GCMMatcher, prepare
from corrlab.models.gcm.official import load_student
from corrlab.models.gcm.refinement import refine_points
from corrlab.models.gcm.student import student_pyramid, student_quad_l2net_confcfs
from corrlab.models.r2d2.patchnet import count_parameters
from corrlab.modules.gcm import GCM
from tests.conftest import shared_data

# (conv index in ops, dilation, BN index or None, ReLU) as the technical report lists the student's layers
STUDENT_LAYERS = [
    (0, 1, 1, True),
    (3, 1, 4, True),
    (6, 2, 7, True),
    (9, 4, 10, False),
    (11, 8, 12, False),
    (13, 16, None, False),
]


def hand_student(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The student trunk written out from its state dict: conv (padding (k-1)*d/2), BN (eval, no affine), ReLU."""
    for conv, dilation, bn, relu in STUDENT_LAYERS:
        weight = state[f"ops.{conv}.weight"]
        x = F.conv2d(
            x, weight, state[f"ops.{conv}.bias"], padding=(weight.shape[-1] - 1) * dilation // 2, dilation=dilation
        )
        if bn is not None:
            x = F.batch_norm(x, state[f"ops.{bn}.running_mean"], state[f"ops.{bn}.running_var"], training=False)
        if relu:
            x = F.relu(x)
    return x


def randomised_student(seed: int = 0):
    torch.manual_seed(seed)
    net = student_quad_l2net_confcfs().eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return net


def test_student_layout_matches_the_released_file():
    net = student_quad_l2net_confcfs()
    keys = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    expected = {f"ops.{i}.{p}" for i in (0, 3, 6, 9, 11, 13) for p in ("weight", "bias")}
    expected |= {f"ops.{i}.{s}" for i in (1, 4, 7, 10, 12) for s in ("running_mean", "running_var")}
    expected |= {"clf.weight", "clf.bias", "sal.weight", "sal.bias"}
    assert keys == expected and count_parameters(net) == 290_627


def test_student_forward_equals_the_hand_written_trunk():
    net = randomised_student()
    x = torch.randn(1, 3, 40, 24)
    with torch.no_grad():
        full = net.features(x)
        assert full.shape == (1, 128, 40, 24)
        torch.testing.assert_close(full, hand_student(net.state_dict(), x), rtol=1e-5, atol=1e-5)


def test_student_pyramid_levels():
    raw = torch.randn(1, 8, 32, 48)
    levels = student_pyramid(raw)
    assert [tuple(m.shape[-2:]) for m in levels] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3), (2, 3)]
    assert levels[-1] is levels[-2] and levels[0] is raw
    by_hand = F.normalize(raw.reshape(1, 8, 16, 2, 24, 2).mean((3, 5)), dim=1)
    torch.testing.assert_close(levels[1], by_hand)


def test_load_student_rejects_other_networks(tmp_path):
    path = tmp_path / "teacher.pt"
    torch.save({"net": "Quad_L2Net_ConfCFS()", "state_dict": {}}, path)
    with pytest.raises(ValueError, match="not GCM's distilled student"):
        load_student(student_quad_l2net_confcfs(), path)


def test_load_student_on_the_released_file():
    path = shared_data("weights/gcm/dstl_r2d2.pt")
    net = student_quad_l2net_confcfs().eval()
    load_student(net, path)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), hand_student(state, x), rtol=1e-4, atol=1e-4)


def test_dense_matching_finds_hand_placed_mutual_matches_and_drops_borders():
    # B is A shifted right by one cell: cell (x, y) of A matches (x + 1, y) of B
    torch.manual_seed(0)
    a = torch.randn(1, 16, 5, 6)
    b = torch.zeros_like(a)
    b[..., 1:] = a[..., :-1]
    b[..., 0] = torch.randn(16, 5)
    pa, pb = dense_feature_matching(a.clone(), b.clone(), ratio=1.0)
    expected = [(x, y) for y in range(1, 4) for x in range(1, 4)]  # not on A's border, B's x + 1 not on B's border
    assert [tuple(p) for p in pa.t().tolist()] == expected
    assert torch.equal(pb, pa + torch.tensor([[1], [0]]))
    # a ratio of 0 keeps nothing (d1 / d2 > 0 for every non-identical pair)
    assert dense_feature_matching(a.clone(), b.clone() + 0.01, ratio=0.0)[0].shape[1] == 0


def naive_refine(points_a, points_b, map_a, map_b, ratio, reference_compatible):
    """Per-parent loops over the 2x2 children, written from the technical report."""
    na = map_a[0] / map_a[0].norm(dim=0, keepdim=True)
    nb = map_b[0] / map_b[0].norm(dim=0, keepdim=True)
    offsets = [(0, 0), (0, 1), (1, 0), (1, 1)]
    out_a, out_b = [], []
    for (xa, ya), (xb, yb) in zip(points_a.t().tolist(), points_b.t().tolist()):
        xa, ya, xb, yb = 2 * xa, 2 * ya, 2 * xb, 2 * yb
        s = np.array(
            [[float(na[:, ya + dy, xa + dx] @ nb[:, yb + ey, xb + ex]) for ex, ey in offsets] for dx, dy in offsets]
        )
        d = 2 - 2 * s
        best_ab = [int(np.argmin(d[i])) for i in range(4)]
        best_ba = [int(np.argmin(d[:, j])) for j in range(4)]
        r_ab = [np.sort(d[i])[0] / (np.sort(d[i])[1] + 1e-8) for i in range(4)]
        r_ba = [np.sort(d[:, j])[0] / (np.sort(d[:, j])[1] + 1e-8) for j in range(4)]
        keep, dist = [], []
        for i in range(4):
            other = r_ba[i] if reference_compatible else r_ba[best_ab[i]]
            ok = max(r_ab[i], other) < ratio and best_ba[best_ab[i]] == i
            keep.append(ok or ratio == -1.0)
            dist.append(d[i, best_ab[i]] if keep[-1] else 5.0)
        for worst in np.argsort(dist, kind="stable")[::-1][:2]:
            keep[worst] = False
        for i in range(4):
            if keep[i]:
                out_a.append((xa + offsets[i][0], ya + offsets[i][1]))
                out_b.append((xb + offsets[best_ab[i]][0], yb + offsets[best_ab[i]][1]))
    return out_a, out_b


@pytest.mark.parametrize("ratio", [0.8, 1.0, -1.0])
def test_refinement_equals_the_per_parent_loops_in_both_modes(ratio):
    torch.manual_seed(1)
    map_a, map_b = torch.randn(1, 8, 24, 24, dtype=torch.float64), torch.randn(1, 8, 24, 24, dtype=torch.float64)
    points = torch.tensor(list(itertools.product(range(11), range(11)))).t()
    results = {}
    channels_last = [m.contiguous(memory_format=torch.channels_last) for m in (map_a, map_b)]  # the folded trunk's
    for compatible in (True, False):
        na, nb = naive_refine(points, points.flip(0), map_a, map_b, ratio, compatible)
        for maps in ((map_a, map_b), channels_last):
            ra, rb = refine_points(points.clone(), points.flip(0).clone(), *maps, ratio, True, compatible)
            assert [tuple(p) for p in ra.t().tolist()] == na and [tuple(p) for p in rb.t().tolist()] == nb
        results[compatible] = ra.shape[1]
        assert ra.shape[1] <= 2 * points.shape[1]
    if ratio == 0.8:  # the ratio-index quirk changes which children survive
        assert results[True] != results[False]
    if ratio == -1.0:
        assert results[True] == results[False] == 2 * points.shape[1]


def test_refinement_falls_back_to_the_doubled_parents():
    map_a = torch.randn(1, 4, 8, 8)
    points = torch.tensor([[1, 2, 3], [1, 2, 3]])
    ra, rb = refine_points(points.clone(), points.clone(), map_a, map_a, ratio=0.0)  # nothing passes ratio < 0
    assert torch.equal(ra, points * 2) and torch.equal(rb, points * 2)


def test_keep_filter_reference_bounds_y_by_the_width():
    matcher = GCMMatcher("student", [1.0] * 6, reference_compatible=True)
    mended = GCMMatcher("student", [1.0] * 6)
    # portrait B: 40 wide, 100 tall -> padded 48 x 112, bottom padding 12: the reference keeps y < 48 - 12 = 36
    points_a = torch.zeros(2, 3, dtype=torch.float64)
    points_b = torch.tensor([[5.0, 5.0, 5.0], [30.0, 50.0, -3.0]], dtype=torch.float64)
    args = (points_a, points_b, (100, 40), (100, 40), (112, 48), (8, 12))
    assert matcher.inside(*args).tolist() == [True, False, True]
    assert mended.inside(*args).tolist() == [True, True, False]


def test_prepare_pads_after_normalising():
    image = np.full((20, 33, 3), 255, np.uint8)
    x, pad = prepare(image, torch.device("cpu"))
    assert pad == (15, 12) and x.shape == (1, 3, 32, 48)
    assert torch.allclose(x[0, 0, :20, :33], torch.tensor((1 - 0.485) / 0.229)) and x[0, :, 20:].abs().max() == 0


def test_gcm_weight_errors_name_the_key(tmp_path):
    gcm = GCM()  # the main config: VGG-19 + student
    with pytest.raises(ValueError, match="weights.backbone"):
        gcm.load_official(tmp_path / "dstl.pt")
    with pytest.raises(FileNotFoundError, match="weights.backbone: no such file .*vgg19-dcbb9e9d.pth"):
        gcm.load_official({"fine": tmp_path / "dstl.pt", "backbone": tmp_path / "missing.pth"})
    with pytest.raises(KeyError, match="valid: \\['fine', 'backbone'\\]"):
        gcm.load_official({"fine": "a", "coarse": "b"})
    with pytest.raises(ValueError, match="not weights.backbone"):
        GCM(backbone="student", ratio_th=[1.0] * 6, fine=None, fine_ratio=None).load_official({"backbone": "x"})
    with pytest.raises(ValueError, match="ratio_th needs 6 values"):
        GCM(backbone="student", ratio_th=[1.0] * 5, fine=None, fine_ratio=None)
    with pytest.raises(ValueError, match="cannot run its ResNet18_R2D2"):
        GCM(backbone="resnet18", fine="r2d2", reference_compatible=True)
