"""GeoAware-SC post-processor, read-out and flip tables against direct computations and the official key format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from corrlab.datamodules.keypoint_groups import AP10K_FLIP_PAIRS, SPAIR_FLIP_PAIRS
from corrlab.models.geoaware.aggregation import AggregationNetwork, DummyAggregationNetwork, normalize_descriptors
from corrlab.models.geoaware.flip import flip_queries, permutation
from corrlab.models.geoaware.letterbox import Letterbox
from corrlab.models.geoaware.readout import mutual_nn_distance, nearest_patch, patch_index, soft_argmax_patch


def official_keys() -> set[str]:
    """The key names of the reference's AggregationNetwork state_dict (Detectron2 Conv2d with .norm)."""
    keys = {"mixing_weights", "logit_scale", "self_logit_scale"}
    for branch, channels in enumerate((640, 1280, 1280, 768)):
        convs = ["conv1", "conv2", "conv3"] + (["shortcut"] if channels != 768 else [])
        for conv in convs:
            prefix = f"bottleneck_layers.{branch}.0.{conv}"
            keys |= {f"{prefix}.weight", f"{prefix}.norm.weight", f"{prefix}.norm.bias"}
    return keys


def test_aggregation_network_has_the_reference_size_and_keys():
    net = AggregationNetwork()
    assert sum(p.numel() for p in net.parameters()) == 5_150_214
    assert set(net.state_dict()) == official_keys()
    assert net.bottleneck_layers[0][0].conv2.weight.shape == (192, 192, 3, 3)


@pytest.mark.slow
def test_load_official_is_strict(tmp_path):
    source = AggregationNetwork()
    with torch.no_grad():
        source.mixing_weights.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    path = tmp_path / "best_856.PTH"
    torch.save(source.state_dict(), path)
    net = AggregationNetwork()
    net.load_official(path)
    x = torch.randn(1, 3968, 5, 5)
    assert torch.equal(net.eval()(x), source.eval()(x))
    state = source.state_dict()
    state["extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.PTH")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        net.load_official(tmp_path / "extra.PTH")
    state.pop("extra")
    state.pop("self_logit_scale")
    torch.save(state, tmp_path / "missing.PTH")
    with pytest.raises(RuntimeError, match="Missing key"):
        net.load_official(tmp_path / "missing.PTH")


@pytest.mark.slow
def test_forward_is_the_softmax_mix_of_the_branches():
    net = AggregationNetwork().eval()
    with torch.no_grad():
        net.mixing_weights.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    x = torch.randn(1, 3968, 4, 4)
    parts = x.split([640, 1280, 1280, 768], dim=1)
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0, 3.0]), 0)
    expected = sum(w[i] * net.bottleneck_layers[i](parts[i]) for i in range(4))
    torch.testing.assert_close(net(x), expected)
    # the DINO branch (768 -> 768) has an identity shortcut: out = relu(conv3(...) + x)
    block = net.bottleneck_layers[3][0]
    y = parts[3]
    manual = F.relu(block.conv3(F.relu(block.conv2(F.relu(block.conv1(y))))) + y)
    torch.testing.assert_close(block(y), manual)


def test_zero_shot_normalises_sd_and_dino_separately():
    desc = torch.cat([torch.full((1, 3200), 2.0), torch.full((1, 768), 5.0)], dim=1)
    assert torch.equal(DummyAggregationNetwork()(desc), desc)
    out = normalize_descriptors(desc, separate_sd=True)
    # each part has norm 1 before the joint normalisation: both parts end with norm 1/sqrt(2)
    torch.testing.assert_close(out[0, :3200].norm(), torch.tensor(2**-0.5))
    torch.testing.assert_close(out[0, 3200:].norm(), torch.tensor(2**-0.5))
    joint = 5 * 768**0.5 / ((2 * 3200**0.5) ** 2 + (5 * 768**0.5) ** 2) ** 0.5  # 0.775: one normalisation only
    torch.testing.assert_close(normalize_descriptors(desc, separate_sd=False)[0, 3200:].norm(), torch.tensor(joint))


def reference_window_soft_argmax(row: torch.Tensor, window: int, grid: int, beta: float = 0.02) -> torch.Tensor:
    """Direct loop version of the reference's get_flow for one source row."""
    corr = row.view(grid, grid).clone()
    cy, cx = divmod(int(row.argmax()), grid)
    mask = torch.zeros_like(corr)
    for i in range(-window, window + 1):
        for j in range(-window, window + 1):
            mask[min(max(cy + i, 0), grid - 1), min(max(cx + j, 0), grid - 1)] = 1
    corr = corr * mask
    p = torch.exp((corr - corr.max()) / beta)
    p = p / p.sum()
    lin = torch.linspace(-1, 1, grid, dtype=row.dtype)
    x = float((p.sum(0) * lin).sum())
    y = float((p.sum(1) * lin).sum())
    return torch.tensor([(x + 1) * (grid - 1) / 2, (y + 1) * (grid - 1) / 2]).clamp(0, grid - 1)


@pytest.mark.parametrize("window", [0, 2, 5])
def test_window_soft_argmax_equals_a_direct_computation(window):
    grid = 9
    rows = torch.randn(6, grid * grid, dtype=torch.float64) * 0.05
    rows[0, 0] = 1.0  # argmax in a corner: the window is clamped
    rows[1, grid * grid - 1] = 1.0
    out = soft_argmax_patch(rows, window, grid)
    expected = torch.stack([reference_window_soft_argmax(r, window if window else grid, grid) for r in rows])
    torch.testing.assert_close(out, expected.to(out))


def test_window_zeroes_outside_values_rather_than_dropping_them():
    grid = 7
    row = torch.full((1, grid * grid), -1.0)
    row[0, 3 * grid + 3] = 0.5  # the max, in the centre
    out = soft_argmax_patch(row, 1, grid, beta=0.5)
    # outside the 3x3 window the values become 0 (> -1): their mass pulls towards the image centre only
    inside = soft_argmax_patch(row, 0, grid, beta=0.5)
    assert out.shape == (1, 2) and torch.allclose(out, torch.tensor([[3.0, 3.0]]))
    assert torch.allclose(inside, torch.tensor([[3.0, 3.0]]))
    row[0, 3 * grid + 3], row[0, 3 * grid + 4] = 0.5, 0.45  # asymmetric window content
    assert soft_argmax_patch(row, 1, grid, beta=0.5)[0, 0] > 3.0


def test_nearest_neighbour_and_patch_index():
    grid = 60
    kpts = torch.tensor([[0.0, 0.0], [13.99, 14.0], [839.0, 420.0]])
    assert patch_index(kpts, 840, grid).tolist() == [0, grid + 0, 30 * grid + 59]
    rows = torch.zeros(1, grid * grid)
    rows[0, 7 * grid + 11] = 1
    assert nearest_patch(rows, grid).tolist() == [[11.0, 7.0]]


def test_mutual_nn_distance_equals_loops():
    desc0, desc1 = F.normalize(torch.randn(20, 8), dim=1), F.normalize(torch.randn(15, 8), dim=1)
    dist = torch.cdist(desc0, desc1)
    values = [dist[i].min() for i in range(20) if int(dist[:, int(dist[i].argmin())].argmin()) == i]
    torch.testing.assert_close(mutual_nn_distance(desc0, desc1), torch.stack(values).mean())


def test_letterbox_matches_the_reference_rounding():
    box = Letterbox(height=333, width=500, size=840)  # new_h = round(559.44) = 559, offset int(140.5) = 140
    assert box.resized == (559, 840) and box.offset == (0, 140)
    p = torch.tensor([[100.0, 50.0]])
    torch.testing.assert_close(box.forward(p), torch.tensor([[168.0, 50 * 1.68 + 140]]))
    torch.testing.assert_close(box.inverse(box.forward(p)), p)
    assert box.image(torch.ones(3, 333, 500))[:, :140].sum() == 0


def test_flip_tables_and_visibility_rule():
    perm = permutation(SPAIR_FLIP_PAIRS["cat"], 30)
    assert perm[:15].tolist() == [1, 0, 3, 2, 5, 4, 7, 6, 8, 10, 9, 12, 11, 13, 14]
    assert (perm[perm] == np.arange(30)).all()  # an involution
    visible = np.zeros(30, bool)
    visible[[0, 1, 2]] = True  # 3 is not visible: (2, 3) is not swapped
    assert permutation(SPAIR_FLIP_PAIRS["cat"], 30, visible)[:4].tolist() == [1, 0, 2, 3]
    ap = permutation(AP10K_FLIP_PAIRS, 17)
    assert ap.tolist() == [1, 0, 2, 3, 4, 8, 9, 10, 5, 6, 7, 14, 15, 16, 11, 12, 13]
    kpts = torch.tensor([[10.0, 1.0], [30.0, 2.0], [50.0, 3.0]])
    flipped = flip_queries(kpts, 840, np.array([1, 0, 2]))
    assert flipped.tolist() == [[810.0, 2.0], [830.0, 1.0], [790.0, 3.0]]


def test_masked_flip_distance_equals_the_reference_loop():
    from corrlab.models.geoaware.readout import masked_distance

    torch.manual_seed(0)
    grid, res = 4, 6
    desc0, desc1 = F.normalize(torch.randn(grid * grid, 5), dim=1), F.normalize(torch.randn(grid * grid, 5), dim=1)
    mask0, mask1 = (torch.rand(12, 12) > 0.4).float(), (torch.rand(12, 12) > 0.4).float()
    # the reference's get_distance, written out: nearest-resized masks, bilinear maps, zeros -> -1e5, loop
    m0 = F.interpolate(mask0[None, None], size=(res, res), mode="nearest")[0, 0]
    m1 = F.interpolate(mask1[None, None], size=(res, res), mode="nearest")[0, 0]
    up0 = F.interpolate(desc0.T.reshape(1, -1, grid, grid), size=(res, res), mode="bilinear")[0] * m0
    up1 = F.interpolate(desc1.T.reshape(1, -1, grid, grid), size=(res, res), mode="bilinear")[0] * m1
    up0[up0 == 0], up1[up1 == 0] = -100000, -100000
    src, trg = up0.reshape(5, -1).T, up1.reshape(5, -1).T
    values = [torch.linalg.norm(trg - src[i], dim=1).min() for i in range(res * res) if m0.reshape(-1)[i] == 1]
    expected = torch.stack(values).mean()
    torch.testing.assert_close(masked_distance(desc0, desc1, mask0, mask1, grid, resolution=res), expected)
