"""Bad input gives errors that name the file, the expected layout and how to get the data."""

from __future__ import annotations

import pytest

from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.hpatches import HPatchesDataModule
from tests.helpers.hpatches_fixture import write_hpatches


def test_missing_root_names_layout_and_download(tmp_path):
    dm = HPatchesDataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as error:
        dm.dataset("test")
    message = str(error.value)
    assert (
        "nowhere" in message
        and "H_1_2" in message
        and "hpatches-sequences-release.tar.gz" in message
        and "data.root=" in message
    )


def test_empty_root_is_not_a_silent_zero_pair_evaluation(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no i_\\*/v_\\* sequence folders"):
        HPatchesDataModule(root=str(tmp_path / "empty")).dataset("test")


def test_corrupt_image_and_homography_name_the_file(tmp_path):
    root = write_hpatches(tmp_path / "hp", num_images=2)
    (root / "i_fixture" / "1.ppm").write_bytes(b"not an image")
    (root / "v_fixture" / "H_1_2").write_text("1 0 0\n0 1\n")
    dataset = HPatchesDataModule(root=str(root)).dataset("test")
    with pytest.raises(UnreadableFileError, match="i_fixture/1.ppm"):
        dataset[0]
    with pytest.raises(UnreadableFileError, match="v_fixture/H_1_2"):
        dataset[1]


def test_hpatches_has_no_training_split(tmp_path):
    with pytest.raises(ValueError, match="no training split"):
        HPatchesDataModule(root=str(tmp_path)).dataset("train")
