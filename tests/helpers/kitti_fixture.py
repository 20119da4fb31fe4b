"""Writes a tiny KITTI optical flow training set in the official layout and format.

Flow maps are 16-bit RGB PNGs encoded here byte by byte (PNG signature, IHDR with bit depth 16 and colour type 2,
one zlib IDAT of unfiltered big-endian rows, IEND), independently of corrlab's OpenCV reader and writer:
R = u * 64 + 2^15, G = v * 64 + 2^15, B = 1 where valid (KITTI devkit).  Frames are 8-bit RGB PNGs.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from corrlab.datamodules.kitti_layout import IMAGE_DIRS


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_rgb16_png(path: Path, rgb: np.ndarray) -> None:
    """(H, W, 3) integers in [0, 65535] as a 16-bit RGB PNG (channels in R, G, B order)."""
    h, w, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def encode_flow(flow: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W, 3) stored values of flow (u, v) exactly on the 1/64 grid; invalid pixels store 0."""
    stored = flow * 64 + 2**15
    assert np.array_equal(stored, np.round(stored)), "fixture flows must be multiples of 1/64"
    rgb = np.zeros((*flow.shape[:2], 3), np.int64)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = stored[..., 0], stored[..., 1], valid
    rgb[~valid] = 0
    return rgb


def write_kitti(
    root: Path,
    year: int,
    pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    seed: int = 0,
) -> Path:
    """pairs: id -> (flow (H, W, 2), valid_occ (H, W), valid_noc (H, W)); random frames of the flow's size."""
    rng = np.random.default_rng(seed)
    images = root / "training" / IMAGE_DIRS[year]
    for folder in (images, root / "training/flow_occ", root / "training/flow_noc"):
        folder.mkdir(parents=True, exist_ok=True)
    for pair_id, (flow, valid_occ, valid_noc) in pairs.items():
        h, w = flow.shape[:2]
        for frame in ("10", "11"):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / f"{pair_id}_{frame}.png")
        write_rgb16_png(root / f"training/flow_occ/{pair_id}_10.png", encode_flow(flow, valid_occ))
        write_rgb16_png(root / f"training/flow_noc/{pair_id}_10.png", encode_flow(flow, valid_noc))
    return root


def smooth_pair(h: int, w: int, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A constant flow `shift` (multiples of 1/64); GT on 3/4 of the pixels (occ), 1/2 of them (noc)."""
    flow = np.broadcast_to(np.array(shift, np.float64), (h, w, 2)).copy()
    py, px = np.mgrid[0:h, 0:w]
    valid_occ = (px + py) % 4 != 0
    valid_noc = valid_occ & (px % 2 == 0)
    return flow, valid_occ, valid_noc
