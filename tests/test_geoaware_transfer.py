"""GeoAware-SC transfer() and match() on features built so that the right answer is known."""

from __future__ import annotations

import torch

from corrlab.modules.geoaware import GeoAwareSC

GRID, SIZE = 12, 168  # stride 14, as 60 x 60 at 840


def one_hot_features(cells: torch.Tensor, blur: float = 0.0) -> torch.Tensor:
    """(3968, g, g) features whose DINO part at cell c is the one-hot of cells[c] (SD part constant), plus
    `blur` on the channel of the next cell (so no descriptor matches exactly)."""
    feats = torch.zeros(3968, GRID, GRID)
    feats[:3200] = 1.0
    for y in range(GRID):
        for x in range(GRID):
            feats[3200 + int(cells[y, x]), y, x] = 1.0
            feats[3200 + (int(cells[y, x]) + 1) % (GRID * GRID), y, x] += blur
    return feats


class ShiftedFeatures:
    """Image 1 cell c is described by c; image 0 cell (x, y) by the cell (x + dx, y + dy) of image 1 (clamped).
    With flip_better the original source descriptors are blurred and the mirrored ones exact, so the flip test
    prefers the mirror."""

    def __init__(self, dx: int, dy: int, flip_better: bool = False) -> None:
        ys, xs = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
        self.target = ys * GRID + xs
        self.source = (ys + dy).clamp(0, GRID - 1) * GRID + (xs + dx).clamp(0, GRID - 1)
        self.flip_better = flip_better
        self.calls = []

    def __call__(self, image_id: str, image, flip: bool = False) -> torch.Tensor:
        self.calls.append((image_id, flip))
        if image_id.endswith("trg"):
            return one_hot_features(self.target)
        return one_hot_features(self.source, blur=0.5 if self.flip_better and not flip else 0.0)


def batch_of(kpts: torch.Tensor, valid: torch.Tensor) -> dict:
    return {
        "image0": torch.zeros(1, 3, SIZE, SIZE),
        "image1": torch.zeros(1, 3, SIZE, SIZE),
        "image0_id": ["src"],
        "image1_id": ["trg"],
        "name": ["pair"],
        "kpts0": kpts[None],
        "kpts_valid": valid[None],
        "category": ["cat"],
    }


def model(features, **kwargs) -> GeoAwareSC:
    return GeoAwareSC(features, post_processor="dummy", grid=GRID, image_size=SIZE, **kwargs).eval()


def test_nearest_neighbour_transfer_lands_on_the_shifted_patch_centre():
    kpts = torch.tensor([[20.0, 30.0], [100.0, 60.0]])  # cells (1, 2) and (7, 4)
    net = model(ShiftedFeatures(2, 1), soft_eval=False)
    out = net.transfer(batch_of(kpts, torch.ones(2, dtype=torch.bool)), kpts[None])
    # target cells (3, 3) and (9, 5): centres 14 * c + 7
    assert out[0].tolist() == [[49.0, 49.0], [133.0, 77.0]]


def test_window_soft_argmax_of_a_one_hot_row_is_its_cell():
    kpts = torch.tensor([[20.0, 30.0]])
    out = model(ShiftedFeatures(2, 1), soft_eval=True, window=2).transfer(
        batch_of(kpts, torch.ones(1, dtype=torch.bool)), kpts[None]
    )
    # cosine 1 at the cell, 0.5 (SD half) elsewhere: softmax(0.5 / 0.02) mass 1 - 1e-10 on the cell
    torch.testing.assert_close(out[0], torch.tensor([[49.0, 49.0]]), atol=1e-3, rtol=0)


def test_descriptors_and_flip_decisions_are_computed_once_per_image():
    features = ShiftedFeatures(0, 0, flip_better=True)
    net = model(features, soft_eval=False, adapt_flip=True)
    kpts = torch.tensor([[20.0, 20.0], [40.0, 20.0], [60.0, 60.0]])  # slots 0, 1 (a left/right pair), 2
    valid = torch.tensor([True, True, True])
    batch = batch_of(torch.cat([kpts, torch.zeros(27, 2)]), torch.cat([valid, torch.zeros(27, dtype=torch.bool)]))
    first = net.transfer(batch, batch["kpts0"])
    second = net.transfer(batch, batch["kpts0"])
    assert torch.equal(first, second)
    assert sorted(features.calls) == [("src", False), ("src", True), ("trg", False)]
    assert net.use_flip(batch, 0)  # mutual-NN distance 0 for the mirror, > 0 for the blurred original
    # flipped: slots 0/1 are predicted from the mirror of keypoint 1/0 (x -> 168 - x: cells 9 and 7); slot 2's
    # partner (3) is not visible, so slot 2 keeps its original prediction (cell 4), as the reference
    assert first[0, :3, 0].tolist() == [9 * 14 + 7, 10 * 14 + 7, 4 * 14 + 7]


def test_match_is_mutual_nearest_neighbours_on_the_grid():
    net = model(ShiftedFeatures(0, 0))
    matches = net.match(batch_of(torch.zeros(1, 2), torch.ones(1, dtype=torch.bool)))
    assert len(matches.kpts0) == GRID * GRID and torch.equal(matches.kpts0, matches.kpts1)
