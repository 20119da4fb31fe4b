"""glibc malloc settings of corrlab's commands, each in a fresh interpreter (they change the whole process):
`reuse_freed_memory` serves a freed 64 MB buffer's pages to the next one without page faults, while
`return_freed_memory` hands them back, so the next buffer faults its pages in again (one fault per page, or per
larger folio where the kernel maps anonymous memory in bigger units).  eval.py leaves Triton unloaded."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.helpers.paths import PROJECT_ROOT

PROBE = """
import resource, sys
import numpy as np
from corrlab.pipeline import memory
getattr(memory, sys.argv[1])()
np.ones(64 * 2**20, dtype=np.uint8)  # touched, then freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(64 * 2**20, dtype=np.uint8)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_of_a_second_buffer(setting: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_reused_memory_takes_no_page_faults_where_returned_memory_faults_again():
    reused, returned = faults_of_a_second_buffer("reuse_freed_memory"), faults_of_a_second_buffer("return_freed_memory")
    assert returned >= 100 and reused <= returned // 20, (reused, returned)


EVAL_PY_PROBE = """
import runpy, sys
sys.argv = ["eval.py", "seed=abc"]
try:
    runpy.run_path("eval.py", run_name="__main__")
except SystemExit as stop:
    print(stop.code, "torch._dynamo" in sys.modules, [n for n, m in sys.modules.items() if n.startswith("triton") and m])
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed: nothing to leave out")
def test_eval_py_imports_torch_dynamo_without_triton_and_says_nothing_of_it():
    done = subprocess.run(
        [sys.executable, "-c", EVAL_PY_PROBE], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.split() == ["2", "True", "[]"], done.stdout  # exit code, torch._dynamo, Triton's modules
    assert done.stderr.strip() == "Error: Wrong type for config key 'seed': it takes an integer, got 'abc'."
