"""Image reading: truncated JPEGs are refused naming the file; EXIF orientation is not applied."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.hpatches import HPatchesDataModule
from corrlab.datamodules.image_io import read_image_array
from corrlab.datamodules.synthetic import skimage_photo_dir
from tests.helpers.hpatches_fixture import write_hpatches

ORIENTATION = 0x0112  # EXIF tag: 6 = rotate 90 degrees clockwise to display


def random_image(height: int = 48, width: int = 80) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_truncated_jpeg(path, fraction: float = 0.6) -> None:
    Image.fromarray(random_image()).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def test_truncated_jpeg_names_the_file(tmp_path):
    path = tmp_path / "cut.jpg"
    write_truncated_jpeg(path)
    with pytest.raises(UnreadableFileError, match="cut.jpg.*truncated"):
        read_image_array(path)


def test_jpeg_with_bytes_after_the_end_marker_is_read(tmp_path):
    path = tmp_path / "trailer.jpg"
    Image.fromarray(random_image()).save(path, quality=95)
    expected = np.asarray(Image.open(path).convert("RGB"))
    path.write_bytes(path.read_bytes() + b"camera trailer data")
    image = read_image_array(path)
    assert image.shape == (48, 80, 3) and np.abs(image.astype(int) - expected).mean() < 2


def test_truncated_jpeg_in_a_dataset_fails_the_pair_naming_the_file(tmp_path):
    root = write_hpatches(tmp_path / "hp", num_images=2)
    (root / "i_fixture" / "2.ppm").unlink()
    write_truncated_jpeg(root / "i_fixture" / "2.jpg")
    dataset = HPatchesDataModule(root=str(root)).dataset("test")
    with pytest.raises(UnreadableFileError, match="i_fixture/2.jpg"):
        dataset[0]


def test_exif_orientation_is_not_applied(tmp_path):
    pixels = random_image(48, 80)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    jpeg = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(jpeg, quality=100, exif=exif.tobytes())
    assert Image.open(jpeg).getexif()[ORIENTATION] == 6
    stored = np.asarray(Image.open(jpeg).convert("RGB"))  # PIL, as the references read: no transpose
    image = read_image_array(jpeg)
    assert image.shape == (48, 80, 3)
    assert np.abs(image.astype(int) - stored).mean() < 2


def test_png_pixels_as_opencv_reads_them_without_libpng_noise(capfd):
    # skimage's photos include PNGs with colour profiles that make OpenCV's libpng print nameless warnings
    photos = sorted(skimage_photo_dir().glob("*.png"))
    assert len(photos) > 5
    for path in photos:
        reference = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if reference is None:
            continue
        capfd.readouterr()
        ours = read_image_array(path)
        assert np.array_equal(ours, cv2.cvtColor(reference, cv2.COLOR_BGR2RGB)), path.name
        assert "libpng" not in capfd.readouterr().err, path.name
