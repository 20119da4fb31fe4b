"""Dense nearest-neighbour accuracy of GCM patch descriptors: a seeded random student, distilled students (corrlab
gcm_distill checkpoints or dstl_r2d2.pt-format files), the released student dstl_r2d2.pt and the R2D2 teacher, on
the same pairs: the real HPatches pairs of ../shared/data (ground-truth homographies) and held-out synthetic
R2D2-style pairs (data=gcm_distill's test split: photos never trained on).

    python -m bench.gcm_distill_accuracy --student short=/tmp/run/checkpoints/last.ckpt [--size 320] [--stride 4]

Per descriptor, queries every `stride` pixels of image 0 whose true position lies in image 1: `nn@t` is the
fraction whose nearest neighbour (over every pixel of image 1) lies within t px of the truth; `mnn@t` the
fraction of the mutual matches within t px, `mnn` their count per pair.  HPatches images are resized
(INTER_AREA) so that the longer side is `--size`, their homography with them (pixel centres at integers).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from corrlab.datamodules.r2d2_pairs import R2D2PairsDataModule
from corrlab.geometry.homography import warp_points
from corrlab.models.gcm.dense_nn import dense_nn_matches
from corrlab.models.gcm.official import load_student
from corrlab.models.gcm.student import student_quad_l2net_confcfs
from corrlab.models.r2d2.checkpoint import load_official
from corrlab.modules.gcm_distill import imagenet_normalise

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PAIRS = (
    ("v_adam", "1.ppm", "3.ppm", "H_1_3"),
    ("v_boat", "1.png", "2.png", "H_1_2"),
    ("v_calder", "1.ppm", "4.ppm", "H_1_4"),
)
THRESHOLDS = (1, 3, 5)


def resized(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The image with its longer side `size` and the 3 x 3 map of its pixels (centres at integers) into it."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    out = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    sx, sy = out.shape[1] / w, out.shape[0] / h
    return out, np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])


def hpatches_pairs(size: int) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(name, image0, image1 as 3 x H x W in [0, 1], H_0to1 in the resized frames)."""
    pairs = []
    for sequence, name0, name1, h_name in PAIRS:
        folder = SHARED / "hpatches" / "partial_pairs" / sequence
        image0, s0 = resized(cv2.imread(str(folder / name0))[..., ::-1], size)
        image1, s1 = resized(cv2.imread(str(folder / name1))[..., ::-1], size)
        H = s1 @ np.loadtxt(folder / h_name) @ np.linalg.inv(s0)
        as_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).float() / 255  # noqa: E731
        pairs.append((f"{sequence} 1-{name1[0]}", as_tensor(image0), as_tensor(image1), torch.from_numpy(H)))
    return pairs


def synthetic_pairs(count: int) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The first `count` held-out test pairs of data=gcm_distill (192 x 192, seed 0)."""
    dataset = R2D2PairsDataModule(num_test_pairs=count, image_size=(192, 192)).dataset("test")
    items = [dataset[i] for i in range(len(dataset))]
    return [(item["name"], item["image0"], item["image1"], item["H_0to1"].double()) for item in items]


@torch.no_grad()
def accuracy(net: torch.nn.Module, image0, image1, H: torch.Tensor, stride: int) -> dict[str, float]:
    desc0 = net.features(imagenet_normalise(image0[None]))[0]
    desc1 = net.features(imagenet_normalise(image1[None]))[0]
    h1, w1 = image1.shape[-2:]
    out = {}
    for mutual in (False, True):
        kpts0, kpts1 = dense_nn_matches(desc0, desc1, stride=stride, mutual=mutual)
        truth = warp_points(H, kpts0.double())
        inside = (truth[:, 0] >= 0) & (truth[:, 0] <= w1 - 1) & (truth[:, 1] >= 0) & (truth[:, 1] <= h1 - 1)
        error = (kpts1.double() - truth).norm(dim=1)[inside]
        prefix = "mnn" if mutual else "nn"
        for t in THRESHOLDS:
            out[f"{prefix}@{t}"] = float((error <= t).double().mean()) if len(error) else 0.0
        if mutual:
            out["mnn"] = float(len(error))
    return out


def networks(students: list[str], teacher: Path, released: Path, baselines: bool) -> dict[str, torch.nn.Module]:
    """Name -> network in eval mode: random (seed 0), the given students, the released student, the teacher
    (only the given students without `baselines`)."""
    torch.manual_seed(0)
    nets = {"random student (seed 0)": student_quad_l2net_confcfs()} if baselines else {}
    for spec in students:
        name, _, path = spec.rpartition("=")
        net = student_quad_l2net_confcfs()
        load_student(net, path)
        nets[name or path] = net
    if baselines and released.is_file():
        net = student_quad_l2net_confcfs()
        load_student(net, released)
        nets["released dstl_r2d2.pt"] = net
    if baselines and teacher.is_file():
        nets[f"teacher {teacher.name}"] = load_official(teacher)
    return {name: net.eval() for name, net in nets.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", action="append", default=[], help="name=path of a gcm_distill ckpt or dstl .pt")
    parser.add_argument("--teacher", type=Path, default=SHARED / "weights" / "r2d2" / "r2d2_WASF_N16.pt")
    parser.add_argument("--released", type=Path, default=SHARED / "weights" / "gcm" / "dstl_r2d2.pt")
    parser.add_argument("--size", type=int, default=320, help="longer side of the HPatches images")
    parser.add_argument("--stride", type=int, default=8, help="query grid step on image 0")
    parser.add_argument("--synthetic", type=int, default=8, help="held-out synthetic pairs")
    parser.add_argument(
        "--baselines", action=argparse.BooleanOptionalAction, default=True, help="random, released, teacher"
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    nets = networks(args.student, args.teacher, args.released, args.baselines)
    sets = {"synthetic (held out)": synthetic_pairs(args.synthetic)}
    if (SHARED / "hpatches" / "partial_pairs").is_dir():
        sets[f"HPatches 3 pairs @{args.size}px"] = hpatches_pairs(args.size)
    columns = [*(f"nn@{t}" for t in THRESHOLDS), *(f"mnn@{t}" for t in THRESHOLDS), "mnn"]
    for set_name, pairs in sets.items():
        print(f"\n### {set_name}: mean over {len(pairs)} pairs, queries every {args.stride} px")
        print("| descriptor | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for name, net in nets.items():
            rows = [accuracy(net, image0, image1, H, args.stride) for _, image0, image1, H in pairs]
            mean = {key: float(np.mean([row[key] for row in rows])) for key in columns}
            cells = [f"{mean[key]:.3f}" for key in columns[:-1]] + [f"{mean['mnn']:.0f}"]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
