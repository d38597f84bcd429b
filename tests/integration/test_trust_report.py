"""make trust end to end: python -m tools.trust against the real local model server and gateway.

Checks the report's structure and that its counts add up, not the targets (`make trust` checks those on
the full sets). The model is the newest version under models/mnist with the explain signature (a version
that has it also has digit_score / is_digit); before one is published, a small two-signature SavedModel
(tests/support/signature_models.py) stands in, since only the counting is under test here.
"""

import json
import subprocess
import sys

import pytest

from contract.mnist import EXPLAIN_SIGNATURE_NAME
from tests.support.processes import REPO_ROOT
from tests.support.signature_models import newest_version_with, write_two_signature_model
from tools import batch_client, trust
from tools.trust_sets import DIGIT, SETS

LIMIT = 16
RUN_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A model server on one judging version and a gateway: (url, version)."""
    work = tmp_path_factory.mktemp("trust")
    version_dir = newest_version_with(EXPLAIN_SIGNATURE_NAME)
    if version_dir is None:
        version_dir = write_two_signature_model(work / "models" / "1")
    url, services = batch_client.start_stack(version_dir.parent, int(version_dir.name), work)
    yield url, int(version_dir.name), services
    for service in services:
        service.stop()


def _run(url: str, version: int, reports, *extra: str) -> subprocess.CompletedProcess:
    args = ["--gateway", url, "--version", str(version), "--limit", str(LIMIT), "--reports", str(reports)]
    return subprocess.run(
        [sys.executable, "-m", "tools.trust", *args, *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def _logs(services) -> str:
    return "\n".join(
        f"===== {service.process.name} =====\n{service.process.log_tail()}" for service in services
    )


def test_report_covers_every_set_and_its_counts_add_up(stack, tmp_path):
    url, version, services = stack
    done = _run(url, version, tmp_path, "--no-fail")
    assert done.returncode == 0, done.stderr + _logs(services)
    report = json.loads((tmp_path / "trust.json").read_text())
    rows = {row["set"]: row for row in report["sets"]}
    assert list(rows) == [trust_set.name for trust_set in SETS]
    for trust_set in SETS:
        row = rows[trust_set.name]
        assert row["n"] == min(LIMIT, trust_set.n)
        assert row["unjudged"] == 0, f"{trust_set.name}: slots without is_digit from a judging version"
        assert row["errors"] == 0, row["error_codes"]
        assert row["accepted"] + row["rejected"] == row["n"]
        assert row["rejected"] == row["rejected_by_model"] + row["refused_by_gateway"]
        assert row["rejected_rate"] == pytest.approx(row["rejected"] / row["n"])
        assert row["versions"] == [version]
        assert row["status"] == trust.verdict(trust_set, row)
        assert row["status"] in ("pass", "fail", "info")
        assert sum(entry["n"] for entry in row["by_kind"].values()) == row["n"]
        assert sum(entry["rejected"] for entry in row["by_kind"].values()) == row["rejected"]
        if row["rejected_by_model"] + row["accepted"]:
            assert (
                0.0
                <= row["digit_score"]["p05"]
                <= row["digit_score"]["p50"]
                <= row["digit_score"]["p95"]
                <= 1
            )
        if trust_set.kind == DIGIT:
            assert 0.0 <= row["accuracy"] <= 1.0
    assert report["passed"] == all(row["status"] in ("pass", "info") for row in rows.values())
    markdown = (tmp_path / "trust.md").read_text()
    assert all(f"| {name} |" in markdown for name in rows)
    assert markdown in done.stdout


def test_a_missed_target_exits_1_unless_no_fail(stack, tmp_path):
    url, version, services = stack
    done = _run(url, version, tmp_path, "--sets", "noise,mnist_test")
    report = json.loads((tmp_path / "trust.json").read_text())
    assert done.returncode == (0 if report["passed"] else 1), done.stderr + _logs(services)
    if not report["passed"]:
        assert "a target was missed" in done.stderr
