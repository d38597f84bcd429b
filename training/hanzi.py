"""Pen paths of Chinese characters (Make Me a Hanzi's stroke medians), the source of stroke fragments.

`make data` fetches the npm package hanzi-writer-data@2.0.1 (9,574 characters, Arphic Public License,
kept beside the data as ARPHICPL.TXT), checks its SHA-256 and writes one compact file of medians: for each
character its strokes in writing order, each the centre line a pen follows. Training draws a few
consecutive strokes of a character with a hand's wobble (training/synthetic.py, "fragments"): the strokes
people write, in compositions that are no digit.

    python -m training.hanzi [--data-dir DIR] [--force]
"""

import argparse
import json
import sys
import tarfile
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from training.dataset import sha256_of
from training.fetch import FetchError, npm_pack

NPM_PACKAGE = "hanzi-writer-data@2.0.1"
TARBALL_SHA256 = "72baf3d82b114e60d6e40ea05f24d2262a05cd39d544e2f322ba2fceb7beff15"
DEFAULT_HANZI_DIR = Path("data/hanzi")
MEDIANS_FILE = "medians.json"
LICENCE_FILE = "ARPHICPL.TXT"
# Make Me a Hanzi draws on a 1024-unit em square, y up, with the baseline 124 units above its bottom.
EM_UNITS, TOP_Y = 1024, 900


class HanziFetchError(FetchError):
    """The package is not the pinned build, or lacks what training needs; the message says which."""


def medians_from_tarball(tarball: Path) -> tuple[dict[str, list], bytes]:
    """({character: medians}, licence text) from the package tarball, after checking its SHA-256."""
    actual = sha256_of(tarball)
    if actual != TARBALL_SHA256:
        raise HanziFetchError(
            f"{tarball.name}: SHA-256 {actual} != pinned {TARBALL_SHA256}; the download is corrupt or the "
            "registry serves another build"
        )
    medians, licence = {}, b""
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if name == LICENCE_FILE:
                licence = archive.extractfile(member).read()
            elif name.endswith(".json") and name != "package.json" and len(name) == len(".json") + 1:
                medians[name[0]] = json.load(archive.extractfile(member))["medians"]
    if not medians or not licence:
        raise HanziFetchError(f"{tarball.name} holds no character files or no {LICENCE_FILE}")
    return medians, licence


def fetch(data_dir: Path = DEFAULT_HANZI_DIR) -> int:
    """Fetch, verify and write the medians file and the licence into `data_dir`; the character count."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".fetch-") as tmp:
        medians, licence = medians_from_tarball(
            npm_pack(NPM_PACKAGE, Path(tmp), "for example apt-get install npm")
        )
        staged = Path(tmp) / MEDIANS_FILE
        staged.write_text(json.dumps(medians, ensure_ascii=False, separators=(",", ":")))
        (data_dir / LICENCE_FILE).write_bytes(licence)
        staged.replace(data_dir / MEDIANS_FILE)  # last: its presence means the fetch is complete
    return len(medians)


@cache
def load_medians(data_dir: Path = DEFAULT_HANZI_DIR) -> tuple[tuple[np.ndarray, ...], ...]:
    """Every character's strokes in writing order, each [k, 2] points in the unit square, y down."""
    path = Path(data_dir) / MEDIANS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make data`")
    characters = json.loads(path.read_text())
    return tuple(
        tuple(np.array([(x / EM_UNITS, (TOP_Y - y) / EM_UNITS) for x, y in stroke]) for stroke in strokes)
        for _, strokes in sorted(characters.items())
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: fetch unless the medians are already there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_HANZI_DIR, help="where the files go")
    parser.add_argument("--force", action="store_true", help="fetch even if the medians are present")
    args = parser.parse_args(argv)
    if not args.force and (args.data_dir / MEDIANS_FILE).is_file():
        print(f"hanzi medians already in {args.data_dir}")
        return 0
    try:
        count = fetch(args.data_dir)
    except (FetchError, OSError, KeyError, ValueError, tarfile.TarError) as exc:
        print(f"make data: error: {exc}", file=sys.stderr)
        return 1
    print(f"{count} characters' stroke medians from {NPM_PACKAGE} into {args.data_dir}, SHA-256 verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
