"""Install the folders src/, data_pairs/ and conf/ under one import name, `corrlab` (metadata in pyproject.toml)."""

from setuptools import find_packages, setup

PACKAGE_DIR = {"corrlab": "src", "corrlab.data_pairs": "data_pairs", "corrlab.conf": "conf"}

setup(
    package_dir=PACKAGE_DIR,
    packages=["corrlab", "corrlab.data_pairs", "corrlab.conf"] + [f"corrlab.{name}" for name in find_packages("src")],
    package_data={"corrlab.conf": ["**/*.yaml"], "corrlab.ops": ["csrc/*.cpp", "csrc/*.cu", "csrc/*.h"]},
)
