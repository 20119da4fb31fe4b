"""`weights.<role>=<path>` on the command line fills the weights mapping that load_official receives."""

from __future__ import annotations

from corrlab.config.overrides import check_overrides
from corrlab.config.schema import CONFIG_DIR
from corrlab.pipeline.cli import weight_role_overrides


def test_role_overrides_become_additions_and_nothing_else_changes():
    args = ["weights.fine=a.pt", "weights=b.pt", "model.weights.x=1", "+weights.y=2", "data.weights_dir=c"]
    assert weight_role_overrides(args) == [
        "+weights.fine=a.pt",
        "weights=b.pt",
        "model.weights.x=1",
        "+weights.y=2",
        "data.weights_dir=c",
    ]


def test_rewritten_role_overrides_pass_the_typo_check():
    check_overrides(
        CONFIG_DIR, "eval", weight_role_overrides(["model=gcm", "weights.fine=a.pt", "weights.backbone=b.pth"])
    )
