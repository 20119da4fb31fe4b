"""Loading GCM's released weights: the distilled student `dstl_r2d2.pt` (GPU-saved; mapped to the CPU), the R2D2
teacher for the `*_R2D2_*` configs, and torchvision ImageNet files for the VGG-19 / ResNet-18 backbones.

`dstl_r2d2.pt` is a legacy torch pickle `{'net': 'Student_Quad_L2Net_ConfCFS()', 'state_dict': ...}`.  It is read
with `torch.load(weights_only=True)` and the `net` string is checked, never executed.  Such files are pickles all
the same: use only ones from a trusted source (AlexHan5832/GCM `models/trained/dstl_r2d2.pt`).
A corrlab checkpoint of the distillation (`train.py experiment=gcm_distill`, its `last.ckpt`) is accepted wherever
dstl_r2d2.pt is: its `student.*` weights are the same network.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from corrlab.models.r2d2.checkpoint import load_official as load_r2d2_official
from corrlab.models.r2d2.checkpoint import read_checkpoint
from corrlab.safe_loading import torch_load

STUDENT_NET = "Student_Quad_L2Net_ConfCFS()"
DISTILLED_PREFIX = "student."  # the student's keys in a corrlab GCMDistill checkpoint


def student_state(path: str | Path) -> dict:
    """The student's state dict from dstl_r2d2.pt (its `net` string checked) or from a corrlab distillation
    checkpoint (a Lightning .ckpt with `student.*` keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GCM student weights not found: {path} (dstl_r2d2.pt or a gcm_distill last.ckpt)")
    checkpoint = torch_load(path, "weights")
    if isinstance(checkpoint, dict) and "pytorch-lightning_version" in checkpoint:
        state = {
            key.removeprefix(DISTILLED_PREFIX): value
            for key, value in checkpoint.get("state_dict", {}).items()
            if key.startswith(DISTILLED_PREFIX)
        }
        if not state:
            raise ValueError(
                f"{path} is a corrlab checkpoint without `student.*` weights: only a checkpoint of "
                "`train.py experiment=gcm_distill` holds a GCM student"
            )
        return state
    checkpoint = read_checkpoint(path)
    if checkpoint["net"].replace(" ", "") != STUDENT_NET:
        raise ValueError(
            f"{path} holds a {checkpoint['net']!r} network, not GCM's distilled student {STUDENT_NET!r} "
            "(an R2D2 teacher file belongs to a *_R2D2_* config's fine descriptor)"
        )
    return {key.removeprefix("module."): value for key, value in checkpoint["state_dict"].items()}


def load_student(net: nn.Module, path: str | Path) -> None:
    """dstl_r2d2.pt (or a gcm_distill checkpoint) into the student trunk, strictly (`module.` prefixes stripped)."""
    state = student_state(path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit {STUDENT_NET}: {error}") from error


def load_teacher(net: nn.Module, path: str | Path) -> None:
    """A released naver/r2d2 file (r2d2_WASF_N16.pt) into the R2D2 fine descriptor, strictly."""
    net.load_state_dict(load_r2d2_official(path).state_dict(), strict=True)
