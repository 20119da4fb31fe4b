"""Install the folders src/, data_pairs/ and conf/ under one import name, `corrlab` (metadata in pyproject.toml)."""

from setuptools import find_namespace_packages, find_packages, setup

PACKAGE_DIR = {"corrlab": "src", "corrlab.data_pairs": "data_pairs", "corrlab.conf": "conf"}
# folders that hold only data (Hydra's config groups, the C++/CUDA sources) are listed as packages too, so that
# setuptools ships their files without warning that an importable folder is missing from `packages`
CONF_GROUPS = [f"corrlab.conf.{name}" for name in find_namespace_packages("conf", exclude=["__pycache__*"])]
DATA = {"corrlab.conf": ["*.yaml"], **{group: ["*.yaml"] for group in CONF_GROUPS}}
DATA["corrlab.ops.csrc"] = ["*.cpp", "*.cu", "*.h"]

setup(
    package_dir=PACKAGE_DIR,
    packages=["corrlab", "corrlab.data_pairs", "corrlab.conf", *CONF_GROUPS, "corrlab.ops.csrc"]
    + [f"corrlab.{name}" for name in find_packages("src")],
    package_data=DATA,
)
