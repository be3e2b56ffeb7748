"""In CI (CI=true) the `dev` extra installs every optional package the tests use: a test skipped
there for a missing one would let an acceptance criterion pass without running, so it fails."""
import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):  # pytest.importorskip at a module's top
    report = (yield).get_result()
    _missing_package_fails_in_ci(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pytest.importorskip inside a test
    report = (yield).get_result()
    _missing_package_fails_in_ci(report)


def _missing_package_fails_in_ci(report) -> None:
    if os.environ.get("CI") == "true" and report.skipped and "could not import" in str(report.longrepr):
        report.outcome = "failed"
