"""Turn the original AP-10K annotations into semantic-correspondence pairs the way GeoAware-SC does, once:

    python -m corrlab.datamodules.ap10k_pairs --root <ap-10k> [--out <ap-10k>/PairAnnotation] [--seed 42]

Recipe (GeoAware-SC prepare_ap10k.ipynb): merge ap10k-{train,val,test}-split1.json; drop crowded images (more
than one annotated animal, plus an optional --crowd-list) and animals with fewer than 3 labelled keypoints; per
species, in image-id order, the last 30 images are test, the 20 before them val, the rest train.  Pairs need >= 3
keypoints labelled in both images.  Intra-species: every val/test combination, 50 x (#images) sampled training
pairs; cross-species: 400 val / 900 test pairs per family with several species; cross-family: 20 val / 30 test
pairs per pair of families (category 'all').  Sampling uses numpy's default_rng(seed), so a seed reproduces the
folder exactly (GeoAware's own lists depend on os.walk order and Python's random, so they are not reproducible).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from corrlab.datamodules.annotation_io import read_json, require
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.keypoint_groups import AP10K_KEYPOINTS

log = logging.getLogger(__name__)

ANNOTATION_FILES = ("ap10k-train-split{}.json", "ap10k-val-split{}.json", "ap10k-test-split{}.json")
SETTINGS = {"intra-species": "", "cross-species": "_cross_species", "cross-family": "_cross_family"}
SPLIT_DIRS = ("trn", "val", "test", "val_cross_species", "test_cross_species", "val_cross_family", "test_cross_family")
LAYOUT = """\
<root>/                                   (AP-10K: 10,015 images, 54 species in 23 families, 17 keypoints)
  annotations/ap10k-{train,val,test}-split1.json   (COCO style: images, annotations with keypoints/bbox,
                                                    categories with name = species, supercategory = family)
  data/<image id, 12 digits>.jpg
  PairAnnotation/                                  (written by: python -m corrlab.datamodules.ap10k_pairs --root <root>)
    {trn,val,test,val_cross_species,test_cross_species,val_cross_family,test_cross_family}.txt   (pair names)
    <split>/<source>-<target>:<category>.json       manifest.json"""
HOW_TO_GET = """\
Download ap-10k.zip from the AP-10K authors (github.com/AlexTheBad/AP-10K):
  https://drive.google.com/file/d/1-FNNGcdtAQRehYYkGY1y4wzFNg4iWNad  (size not verified here; e.g. gdown 1-FNNGcdtAQRehYYkGY1y4wzFNg4iWNad)
unzip it, then write the pairs once: python -m corrlab.datamodules.ap10k_pairs --root <ap-10k>"""


@dataclass(frozen=True)
class Recipe:
    """GeoAware-SC's constants."""

    min_keypoints: int = 3
    test_per_species: int = 30
    val_per_species: int = 20
    train_pairs_per_image: int = 50
    cross_species_pairs: tuple[int, int] = (400, 900)  # (val, test) per family
    cross_family_pairs: tuple[int, int] = (20, 30)  # (val, test) per pair of families


@dataclass
class Animal:
    """One usable annotation (its image holds no other animal)."""

    stem: str
    file_name: str
    width: int
    height: int
    bbox: list[float]  # x, y, w, h
    keypoints: np.ndarray  # (17, 3)
    species: str
    family: str

    @property
    def visible(self) -> np.ndarray:
        return self.keypoints[:, 2] > 0


def annotation_files(root: Path, split_index: int = 1) -> tuple[list[Path], list[str]]:
    """The train/val/test annotation files present, and the names of those missing (at least one must be there)."""
    paths = [root / "annotations" / pattern.format(split_index) for pattern in ANNOTATION_FILES]
    present, missing = [p for p in paths if p.is_file()], [p.name for p in paths if not p.is_file()]
    if not present:
        raise DatasetNotFoundError(
            "AP-10K", root, LAYOUT, HOW_TO_GET, problem=f"has none of annotations/{{{', '.join(missing)}}}"
        )
    return present, missing


def load_annotations(root: Path, split_index: int = 1) -> tuple[list[dict], dict[int, dict], dict[int, dict]]:
    """Annotations, images by id and categories by id, merged over the train/val/test files present."""
    annotations, images, categories = [], {}, {}
    present, missing = annotation_files(root, split_index)
    if missing:
        log.warning(
            "AP-10K at %s lacks annotations/%s: writing pairs from %s only, so they differ from GeoAware-SC's "
            "(which merges all three)",
            root,
            ", ".join(missing),
            ", ".join(p.name for p in present),
        )
    for path in present:
        data = read_json(path)
        require(data, ["images", "annotations", "categories"], path)
        annotations += [dict(a, _file=str(path)) for a in data["annotations"]]
        images.update({int(i["id"]): i for i in data["images"]})
        categories.update({int(c["id"]): c for c in data["categories"]})
    for category in categories.values():
        if tuple(category.get("keypoints", AP10K_KEYPOINTS)) != AP10K_KEYPOINTS:
            raise ValueError(
                f"category {category.get('name')}: keypoints {category.get('keypoints')} differ from AP-10K's 17"
            )
    return annotations, images, categories


def crowd_stems(entries: Sequence[str]) -> set[str]:
    """Image stems of a crowd list, whether written as stems, file names (.jpg) or paths."""
    return {Path(entry).stem for entry in entries if entry.strip()}


def usable_animals(
    root: Path, recipe: Recipe, crowd_list: Sequence[str] = (), split_index: int = 1
) -> tuple[list[Animal], dict[str, int]]:
    """Annotations of uncrowded images with at least `min_keypoints` labelled keypoints, and the number of
    annotations dropped by each rule (plus the crowd-list entries that name no annotated image)."""
    annotations, images, categories = load_annotations(root, split_index)
    per_image = Counter(int(a["image_id"]) for a in annotations)
    crowded = crowd_stems(crowd_list)
    dropped = Counter({"several_animals_in_image": 0, "crowd_list": 0, "too_few_keypoints": 0})
    seen_stems = set()
    animals = []
    for a in annotations:
        for key in ("image_id", "category_id", "keypoints", "bbox"):
            if key not in a:
                raise UnreadableFileError(a["_file"], f"annotation {a.get('id')} lacks '{key}'")
        image = images.get(int(a["image_id"]))
        if image is None:
            raise UnreadableFileError(
                a["_file"], f"annotation {a.get('id')} refers to the unknown image {a['image_id']}"
            )
        stem, suffix = Path(image["file_name"]).stem, Path(image["file_name"]).suffix
        if suffix != ".jpg":
            raise UnreadableFileError(a["_file"], f"image {image['file_name']}: AP-10K images are .jpg")
        seen_stems.add(stem)
        if per_image[int(a["image_id"])] > 1:
            dropped["several_animals_in_image"] += 1
            continue
        if stem in crowded:
            dropped["crowd_list"] += 1
            continue
        keypoints = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        if keypoints.shape != (17, 3):
            raise UnreadableFileError(
                a["_file"], f"annotation {a.get('id')}: {keypoints.size} keypoint values, expected 51"
            )
        category = categories[int(a["category_id"])]
        animal = Animal(
            stem,
            image["file_name"],
            int(image["width"]),
            int(image["height"]),
            [float(v) for v in a["bbox"]],
            keypoints,
            category["name"],
            category["supercategory"],
        )
        if animal.visible.sum() >= recipe.min_keypoints:
            animals.append(animal)
        else:
            dropped["too_few_keypoints"] += 1
    dropped["crowd_list_entries_matching_no_image"] = len(crowded - seen_stems)
    return animals, dict(dropped)


def split_species(animals: list[Animal], recipe: Recipe) -> dict[str, dict[tuple[str, str], list[Animal]]]:
    """split ('trn', 'val', 'test') -> (family, species) -> animals in image order."""
    by_species: dict[tuple[str, str], list[Animal]] = defaultdict(list)
    for animal in animals:
        by_species[(animal.family, animal.species)].append(animal)
    splits: dict[str, dict[tuple[str, str], list[Animal]]] = {"trn": {}, "val": {}, "test": {}}
    for key in sorted(by_species):
        members = sorted(by_species[key], key=lambda a: a.stem)
        n_test = min(recipe.test_per_species, len(members))
        n_val = min(recipe.val_per_species, len(members) - n_test)
        n_train = len(members) - n_test - n_val
        splits["trn"][key], splits["val"][key], splits["test"][key] = (
            members[:n_train],
            members[n_train : n_train + n_val],
            members[n_train + n_val :],
        )
    return splits


def candidate_pairs(
    sources: list[Animal], targets: list[Animal], recipe: Recipe, upper: bool = False
) -> list[tuple[int, int]]:
    """(i, j) with >= min_keypoints keypoints labelled in both; `upper` keeps i < j (pairs within one list)."""
    if not sources or not targets:
        return []
    a = np.stack([s.visible for s in sources]).astype(np.int64)
    b = np.stack([t.visible for t in targets]).astype(np.int64)
    ok = (a @ b.T) >= recipe.min_keypoints
    if upper:
        ok = np.triu(ok, k=1)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(ok))]


def sample(rng: np.random.Generator, items: list, count: int | None) -> list:
    """`count` items without replacement (all of them, in order, when count is None or larger)."""
    if count is None or count >= len(items):
        return items
    return [items[i] for i in sorted(rng.choice(len(items), size=count, replace=False))]


def make_pairs(animals: list[Animal], recipe: Recipe, seed: int) -> dict[str, list[tuple[Animal, Animal, str]]]:
    """split directory -> (source, target, category) in the GeoAware-SC settings."""
    rng = np.random.default_rng(seed)
    splits = split_species(animals, recipe)
    out: dict[str, list[tuple[Animal, Animal, str]]] = {d: [] for d in SPLIT_DIRS}
    for split, groups in splits.items():
        for (_, species), members in groups.items():
            members = [members[i] for i in rng.permutation(len(members))]  # random source/target order
            pairs = candidate_pairs(members, members, recipe, upper=True)
            count = recipe.train_pairs_per_image * len(members) if split == "trn" else None
            out[split] += [(members[i], members[j], species) for i, j in sample(rng, pairs, count)]
    for index, split in enumerate(("val", "test")):
        families: dict[str, list[tuple[str, list[Animal]]]] = defaultdict(list)
        for (family, species), members in splits[split].items():
            families[family].append((species, members))
        for family in sorted(families):
            species_lists = families[family]
            if len(species_lists) < 2:
                continue
            pairs = []
            for (_, first), (_, second) in itertools.combinations(species_lists, 2):
                pairs += [(first[i], second[j]) for i, j in candidate_pairs(first, second, recipe)]
            out[f"{split}_cross_species"] += [
                (s, t, family) for s, t in sample(rng, pairs, recipe.cross_species_pairs[index])
            ]
        for f1, f2 in itertools.combinations(sorted(families), 2):
            first = [a for _, members in families[f1] for a in members]
            second = [a for _, members in families[f2] for a in members]
            pairs = [(first[i], second[j]) for i, j in candidate_pairs(first, second, recipe)]
            out[f"{split}_cross_family"] += [
                (s, t, "all") for s, t in sample(rng, pairs, recipe.cross_family_pairs[index])
            ]
    return out


def pair_record(source: Animal, target: Animal, category: str, setting: str) -> dict:
    """The pair JSON: SPair's pair-annotation keys plus each image's visible ids and their keypoints (also those the
    other image lacks: GeoAware-SC's self-flip term uses them) and species/family."""
    ids = np.nonzero(source.visible & target.visible)[0]
    corners = lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]]  # noqa: E731  x, y, w, h -> x1, y1, x2, y2
    return {
        "src_imname": source.file_name,
        "trg_imname": target.file_name,
        "src_imsize": [source.width, source.height, 3],
        "trg_imsize": [target.width, target.height, 3],
        "src_bndbox": corners(source.bbox),
        "trg_bndbox": corners(target.bbox),
        "src_kps": source.keypoints[ids, :2].tolist(),
        "trg_kps": target.keypoints[ids, :2].tolist(),
        "kps_ids": [str(i) for i in ids],
        "src_visible_ids": np.nonzero(source.visible)[0].tolist(),
        "trg_visible_ids": np.nonzero(target.visible)[0].tolist(),
        "src_visible_kps": source.keypoints[source.visible, :2].tolist(),
        "trg_visible_kps": target.keypoints[target.visible, :2].tolist(),
        "category": category,
        "setting": setting,
        "species": [source.species, target.species],
        "family": [source.family, target.family],
    }


def write_pairs(
    root: Path, out: Path, seed: int = 42, crowd_list: Path | None = None, overwrite: bool = False
) -> dict[str, int]:
    """Write out/<split>/<name>.json, out/<split>.txt and out/manifest.json (with what was dropped and which
    splits came out empty, both also logged); return the pair count per split."""
    existing = [d for d in SPLIT_DIRS if (out / d).exists() or (out / f"{d}.txt").exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds pairs ({', '.join(existing)}); pass --overwrite to write them again"
        )
    recipe = Recipe()
    crowd = crowd_list.read_text().split() if crowd_list else []
    animals, dropped = usable_animals(root, recipe, crowd)
    log.info("AP-10K: %d usable animals; dropped: %s", len(animals), dropped)
    pairs = make_pairs(animals, recipe, seed)
    counts = {}
    for split, members in pairs.items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.json"):
            old.unlink()
        setting = next((s for s, suffix in SETTINGS.items() if suffix and split.endswith(suffix)), "intra-species")
        names = []
        for source, target, category in members:
            name = f"{source.stem}-{target.stem}:{category}"
            (folder / f"{name}.json").write_text(json.dumps(pair_record(source, target, category, setting)))
            names.append(name)
        (out / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
        counts[split] = len(names)
    empty = [split for split, count in counts.items() if count == 0]
    if empty:
        log.warning("AP-10K: no pairs in %s (too few usable images of those species/families)", ", ".join(empty))
    manifest = {
        "source": str(root),
        "seed": seed,
        "recipe": asdict(recipe),
        "crowd_list": str(crowd_list) if crowd_list else None,
        "crowd_rule": "images with more than one annotated animal, plus the crowd list",
        "annotation_files": [p.name for p in annotation_files(root)[0]],
        "missing_annotation_files": annotation_files(root)[1],  # a warning was logged when any
        "dropped_annotations": dropped,
        "empty_splits": empty,
        "pairs": counts,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write AP-10K semantic-correspondence pairs (GeoAware-SC recipe).")
    parser.add_argument("--root", type=Path, required=True, help="AP-10K folder with annotations/ and data/")
    parser.add_argument("--out", type=Path, help="pair folder (default: <root>/PairAnnotation)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--crowd-list", type=Path, help="extra image stems to drop (e.g. GeoAware-SC's data/ap-10k_is_crowd.txt)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace pairs written before")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    counts = write_pairs(
        args.root, args.out or args.root / "PairAnnotation", args.seed, args.crowd_list, args.overwrite
    )
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
