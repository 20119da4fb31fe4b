"""Writes a tiny MegaDepth in the official D2-Net layout: a textured room corner seen by posed cameras.

<root>/Undistorted_SfM/<scene>/images/<name>.jpg, phoenix/S6/zl548/MegaDepth_v1/<scene>/dense0/depths/<name>.h5,
scene_info/<scene>.npz (D2-Net keys, object arrays, np.savez) and megadepth_test_1500_scene_info/ (LoFTR
pickled dicts with pair_infos + megadepth_test_1500.txt).  Intrinsics are stored in COLMAP's pixel-corner
convention, like the real files; images are rendered with the matching pixel-centre camera, so depth,
poses and pixels agree exactly.  Overlaps are set by hand (OVERLAPS) so filters have known answers.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import cv2
import h5py
import numpy as np

from corrlab.datamodules.image_io import read_image_array
from corrlab.datamodules.synthetic import skimage_photo_dir

CORNER_Z = 10.0  # a room corner: two textured walls meeting along the vertical line x = 0, z = 10
TEXTURE_SCALE = 0.02  # world units per texture pixel
TEXTURE_SIZE = (600, 900)  # (h, w) of each wall's texture
WALLS = (np.array([-5.0, 0.0, -2.0]), np.array([5.0, 0.0, -2.0]))  # each wall's direction away from the corner
# per scene: (image size (h, w), yaw/pitch degrees, camera centre) of each image
SCENES = {
    "0001": [
        ((240, 360), (0, 0), (0.0, 0.0, 0.0)),
        ((240, 360), (4, 1), (-0.8, 0.1, 0.3)),
        ((240, 320), (-3, 2), (0.6, -0.2, -0.4)),
        ((360, 240), (2, -2), (0.3, 0.4, 0.2)),
        ((240, 360), (-6, 0), (1.2, 0.0, 0.5)),
    ],
    "0015": [
        ((240, 360), (0, 0), (0.0, 0.0, 0.0)),
        ((240, 360), (5, -1), (-1.0, 0.2, 0.2)),
        ((240, 360), (-4, 1), (0.9, -0.1, -0.3)),
    ],
    "0024": [((240, 360), (0, 0), (0.0, 0.0, 0.0)), ((240, 360), (3, 2), (-0.5, -0.3, 0.1))],
}
# overlap_matrix entries set by hand (symmetric); the rest is 0.  Scene 0001: pair (0, 4) has overlap 0.2.
OVERLAPS = {
    "0001": {
        (0, 1): 0.6,
        (0, 2): 0.4,
        (0, 3): 0.5,
        (0, 4): 0.2,
        (1, 2): 0.36,
        (1, 3): 0.7,
        (1, 4): 0.45,
        (2, 3): 0.9,
        (2, 4): 0.5,
        (3, 4): 0.3,
    },
    "0015": {(0, 1): 0.5, (0, 2): 0.4, (1, 2): 0.3},
    "0024": {(0, 1): 0.8},
}
PHOTOS = ("coffee.png", "astronaut.png")


def rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    yaw = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    pitch = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    return pitch @ yaw


def camera(
    size: tuple[int, int], angles: tuple[float, float], centre: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(K in COLMAP corner convention, 4x4 world-to-camera pose)."""
    h, w = size
    f = 0.9 * max(h, w)
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    R = rotation(*angles)
    pose = np.eye(4)
    pose[:3, :3] = R
    pose[:3, 3] = -R @ np.asarray(centre)
    return K, pose


def centre_convention(K: np.ndarray) -> np.ndarray:
    out = K.copy()
    out[:2, 2] -= 0.5
    return out


def textures() -> list[np.ndarray]:
    return [
        cv2.resize(read_image_array(skimage_photo_dir() / p), TEXTURE_SIZE[::-1], interpolation=cv2.INTER_LINEAR)
        for p in PHOTOS
    ]


def wall_frame(wall: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, u axis, v axis) of a wall: X = origin + u s a + v s b for texture pixel (u, v)."""
    a = WALLS[wall] / np.linalg.norm(WALLS[wall])
    b = np.array([0.0, 1.0, 0.0])
    origin = np.array([0.0, -TEXTURE_SIZE[0] / 2 * TEXTURE_SCALE, CORNER_Z])
    return origin, a, b


def wall_homography(K: np.ndarray, pose: np.ndarray, wall: int) -> np.ndarray:
    """Texture pixel (u, v) of a wall -> image pixel (pixel-centre convention)."""
    origin, a, b = wall_frame(wall)
    R, t = pose[:3, :3], pose[:3, 3]
    return centre_convention(K) @ np.column_stack([R @ a * TEXTURE_SCALE, R @ b * TEXTURE_SCALE, R @ origin + t])


def render(
    K: np.ndarray, pose: np.ndarray, size: tuple[int, int], walls: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, depth with 0 where no wall is seen): per pixel the nearest wall (the corner is concave)."""
    h, w = size
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.linalg.inv(centre_convention(K)) @ np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)])
    R, t = pose[:3, :3], pose[:3, 3]
    image = np.zeros((h, w, 3), np.uint8)
    depth = np.full(h * w, np.inf)
    for wall, tex in enumerate(walls):
        H = wall_homography(K, pose, wall)
        colour = cv2.warpPerspective(tex, H, (w, h), flags=cv2.INTER_LINEAR)
        covered = cv2.warpPerspective(np.ones(tex.shape[:2], np.uint8), H, (w, h), flags=cv2.INTER_NEAREST).ravel() > 0
        origin, a, b = wall_frame(wall)
        normal_c = R @ np.cross(a, b)
        z = (normal_c @ (R @ origin + t)) / (normal_c @ rays)
        nearer = covered & (z > 0) & (z < depth)
        depth[nearer] = z[nearer]
        image.reshape(-1, 3)[nearer] = colour.reshape(-1, 3)[nearer]
    depth[~np.isfinite(depth)] = 0
    return image, depth.reshape(h, w).astype(np.float32)


def track_points(count: int = 400, seed: int = 0) -> np.ndarray:
    """3-D points on the two walls (count, 3)."""
    rng = np.random.default_rng(seed)
    points = []
    for wall in (0, 1):
        origin, a, b = wall_frame(wall)
        u = rng.uniform(0, TEXTURE_SIZE[1], count // 2)
        v = rng.uniform(0, TEXTURE_SIZE[0], count // 2)
        points.append(origin + (u[:, None] * a + v[:, None] * b) * TEXTURE_SCALE)
    return np.concatenate(points)


def observations(points: np.ndarray, K: np.ndarray, pose: np.ndarray, size: tuple[int, int]) -> tuple[dict, dict]:
    """(point id -> [x, y] in corner convention, point id -> depth / focal) of the visible points."""
    h, w = size
    camera_points = points @ pose[:3, :3].T + pose[:3, 3]
    projected = camera_points @ K.T
    xy = projected[:, :2] / projected[:, 2:]
    inside = (xy[:, 0] > 0) & (xy[:, 0] < w) & (xy[:, 1] > 0) & (xy[:, 1] < h) & (camera_points[:, 2] > 0)
    to_2d = {int(i): [float(xy[i, 0]), float(xy[i, 1])] for i in np.flatnonzero(inside)}
    to_ndepth = {int(i): float(camera_points[i, 2] / K[0, 0]) for i in np.flatnonzero(inside)}
    return to_2d, to_ndepth


def scene_folders(root: Path, scene: str) -> tuple[Path, Path]:
    """(image folder, depth folder) of a scene in the D2-Net undistorted layout, created."""
    image_dir = root / "Undistorted_SfM" / scene / "images"
    depth_dir = root / "phoenix" / "S6" / "zl548" / "MegaDepth_v1" / scene / "dense0" / "depths"
    image_dir.mkdir(parents=True, exist_ok=True)
    depth_dir.mkdir(parents=True, exist_ok=True)
    return image_dir, depth_dir


def index_arrays(info: dict) -> dict:
    """image_paths, depth_paths, intrinsics, poses as the object arrays of a scene_info file."""
    return {
        "image_paths": np.array(info["image_paths"], dtype=object),
        "depth_paths": np.array(info["depth_paths"], dtype=object),
        "intrinsics": np.array(info["intrinsics"] + [None], dtype=object)[:-1],
        "poses": np.array(info["poses"] + [None], dtype=object)[:-1],
    }


def write_scene(root: Path, scene: str, views: list, walls: list[np.ndarray]) -> dict:
    """Images, depths and scene_info/<scene>.npz of one scene; returns the scene_info dict."""
    image_dir, depth_dir = scene_folders(root, scene)
    points = track_points()
    info = {
        k: []
        for k in ("image_paths", "depth_paths", "intrinsics", "poses", "points3D_id_to_2D", "points3D_id_to_ndepth")
    }
    for number, (size, angles, centre) in enumerate(views):
        name = f"{scene}_{number:02d}"
        K, pose = camera(size, angles, centre)
        image, depth = render(K, pose, size, walls)
        cv2.imwrite(
            str(image_dir / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        with h5py.File(depth_dir / f"{name}.h5", "w") as handle:
            handle.create_dataset("depth", data=depth, compression="gzip")
        to_2d, to_ndepth = observations(points, K, pose, size)
        info["image_paths"].append(f"Undistorted_SfM/{scene}/images/{name}.jpg")
        info["depth_paths"].append(f"phoenix/S6/zl548/MegaDepth_v1/{scene}/dense0/depths/{name}.h5")
        info["intrinsics"].append(K)
        info["poses"].append(pose)
        info["points3D_id_to_2D"].append(to_2d)
        info["points3D_id_to_ndepth"].append(to_ndepth)
    n = len(views)
    overlap = np.zeros((n, n))
    for (i, j), value in OVERLAPS[scene].items():
        overlap[i, j] = overlap[j, i] = value
    np.fill_diagonal(overlap, -1.0)
    axes = np.stack([pose[2, :3] for pose in info["poses"]])
    arrays = {
        **index_arrays(info),
        "overlap_matrix": overlap,
        "scale_ratio_matrix": np.where(overlap > 0, 1.2, -1.0),
        "angles": np.degrees(np.arccos(np.clip(axes @ axes.T, -1, 1))),
        "n_points3D": np.array([len(d) for d in info["points3D_id_to_2D"]]),
        "points3D_id_to_2D": np.array(info["points3D_id_to_2D"], dtype=object),
        "points3D_id_to_ndepth": np.array(info["points3D_id_to_ndepth"], dtype=object),
    }
    (root / "scene_info").mkdir(exist_ok=True)
    np.savez(root / "scene_info" / f"{scene}.npz", **arrays)
    return arrays


def write_test_index(root: Path, scene_info: dict, scene: str = "0015", overlaps: dict | None = None) -> Path:
    """A MegaDepth-1500-style index (LoFTR pickled dict with pair_infos) over one scene's pairs
    (`overlaps`: {(i, j): overlap}, default the fixture's)."""
    index_dir = root / "megadepth_test_1500_scene_info"
    index_dir.mkdir(exist_ok=True)
    pairs = [((np.array([i, j]), float(o), np.zeros(4))) for (i, j), o in (overlaps or OVERLAPS[scene]).items()]
    content = {k: scene_info[k] for k in ("image_paths", "depth_paths", "intrinsics", "poses")}
    content["pair_infos"] = pairs
    with open(index_dir / f"{scene}_0.1_0.3.npz", "wb") as handle:
        pickle.dump(content, handle)
    (index_dir / "megadepth_test_1500.txt").write_text(f"{scene}_0.1_0.3\n")
    return index_dir


def write_megadepth(root: Path) -> Path:
    """The three scenes of SCENES, with scene 0015 also as the MegaDepth-1500-style test index."""
    walls = textures()
    infos = {scene: write_scene(root, scene, views, walls) for scene, views in SCENES.items()}
    write_test_index(root, infos["0015"])
    return root


def write_real_pair(root: Path, sample: Path, scene: str = "0015") -> Path:
    """The real pair of LoFTR's MegaDepth sample (../shared/data) in the D2-Net layout: its images and depth
    maps linked into Undistorted_SfM/<scene>/images and phoenix/.../depths, a two-image scene_info/<scene>.npz
    with its real intrinsics and poses, and a MegaDepth-1500-style test index over the same pair."""
    source = np.load(sample / "sample.npz", allow_pickle=True)
    (i, j), overlap = source["pair_infos"][0][:2]
    image_dir, depth_dir = scene_folders(root, scene)
    info = {"image_paths": [], "depth_paths": [], "intrinsics": [], "poses": []}
    for row in (i, j):
        image, depth = str(source["image_paths"][row]), str(source["depth_paths"][row])
        (image_dir / image).symlink_to(sample / image)
        (depth_dir / depth).symlink_to(sample / depth)
        info["image_paths"].append(f"Undistorted_SfM/{scene}/images/{image}")
        info["depth_paths"].append(f"phoenix/S6/zl548/MegaDepth_v1/{scene}/dense0/depths/{depth}")
        info["intrinsics"].append(np.asarray(source["intrinsics"][row], dtype=np.float64))
        info["poses"].append(np.asarray(source["poses"][row], dtype=np.float64))
    overlap_matrix = np.array([[-1.0, overlap], [overlap, -1.0]])
    arrays = {
        **index_arrays(info),
        "overlap_matrix": overlap_matrix,
        "scale_ratio_matrix": np.where(overlap_matrix > 0, 1.0, -1.0),
    }
    (root / "scene_info").mkdir(parents=True, exist_ok=True)
    np.savez(root / "scene_info" / f"{scene}.npz", **arrays)
    write_test_index(root, arrays, scene, overlaps={(0, 1): float(overlap)})
    return root
