"""Shared fixtures of the Python package's tests (tests/python): the gmm program installed with the package,
a scratch directory, and the suite's rules: scipy's array API support on (so that scikit-learn's array API
check runs instead of skipping), and a skipped test fails the run (CI counts a skip as a failure)."""
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy is imported

import shutil
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS_DIR))  # oracle_sklearn's data sets, initial parameters and tolerances


@pytest.fixture(scope="session")
def gmm_cli():
    """The gmm program built and installed by `pip install .` (beside this Python), or $GMM_CLI."""
    path = os.environ.get("GMM_CLI") or shutil.which("gmm", path=os.path.dirname(sys.executable))
    assert path, "the gmm program is not installed beside %s; set GMM_CLI" % sys.executable
    return path


_skipped = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped and session.exitstatus == 0:
        print("\nskipped tests count as failures here: %s" % ", ".join(_skipped))
        session.exitstatus = 1
