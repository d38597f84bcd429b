"""gateway/gunicorn.conf.py's start and exit hooks: an operator's metrics directory is never deleted."""

import importlib.util
import os
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "gateway" / "gunicorn.conf.py"


@pytest.fixture
def conf(monkeypatch):
    # The config writes os.environ itself; the whole environment is put back after each test, so no later
    # test's child process inherits a metrics directory that no longer exists.
    saved = dict(os.environ)
    for name in ("PROMETHEUS_MULTIPROC_DIR", "GATEWAY_OWNS_METRICS_DIR"):
        monkeypatch.delenv(name, raising=False)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    os.environ.clear()
    os.environ.update(saved)


def test_operator_metrics_dir_keeps_everything_but_stale_metric_files(conf, tmp_path, monkeypatch):
    named = tmp_path / "metrics"
    (named / "keep").mkdir(parents=True)
    (named / "keep" / "notes.txt").write_text("mine")
    (named / "README").write_text("mine too")
    (named / "counter_123.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(named))
    conf.on_starting(None)
    assert sorted(path.name for path in named.iterdir()) == ["README", "keep"]
    assert (named / "keep" / "notes.txt").read_text() == "mine"
    conf.on_exit(None)
    assert named.is_dir() and (named / "README").exists()


def test_operator_metrics_dir_that_does_not_exist_is_created(conf, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new"))
    conf.on_starting(None)
    assert (tmp_path / "new").is_dir()


def test_own_metrics_dir_is_made_and_removed(conf):
    conf.on_starting(None)  # the fixture's monkeypatch restores the variables this sets
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir()
    conf.on_exit(None)
    assert not made.exists()
