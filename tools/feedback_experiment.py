"""Corrections of a systematic kind sent to a running gateway, and versions scored on held-out examples of it.

  python -m tools.feedback_experiment post --style underlined --count 3000 [--only-wrong]
  python -m tools.feedback_experiment post --style plain --digit 7 --relabel 1 --count 600   (poisoning)
  python -m tools.feedback_experiment score --style underlined --versions 1 4

Corrections are made from MNIST *training* digits and scores from MNIST *test* digits, so no scored image
was ever sent as a correction.
"""

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from tools.batch_client import BatchError, batches, predict_batch
from tools.handwriting_styles import STYLES, png

DEFAULT_GATEWAY = "http://127.0.0.1:8000"
POST_THREADS = 4  # a few users at once, as the gateway sees them
TIMEOUT_S = 30


@dataclass(frozen=True)
class Examples:
    """Styled digits as PNG uploads, their true labels and the label a correction will give."""

    uploads: list[bytes]
    labels: np.ndarray
    corrected_to: np.ndarray


def styled(split: str, style: str, count: int, seed: int, digit=None, relabel=None) -> Examples:
    """`count` MNIST digits of `split` ("train" or "test") in `style`; only `digit`s when given."""
    from training.dataset import DEFAULT_DATA_DIR, load_mnist

    train, test = load_mnist(Path(DEFAULT_DATA_DIR))
    source = train if split == "train" else test
    candidates = np.arange(len(source.labels)) if digit is None else np.flatnonzero(source.labels == digit)
    chosen = np.random.default_rng(seed).choice(candidates, size=min(count, len(candidates)), replace=False)
    labels = source.labels[chosen].astype(np.int64)
    corrected = np.full_like(labels, relabel) if relabel is not None else labels
    return Examples([png(STYLES[style](source.images[i])) for i in chosen], labels, corrected)


def predictions(url: str, uploads: list[bytes], version: int | None = None) -> tuple[np.ndarray, int | None]:
    """The gateway's digit for each upload (-1 when refused or failed) and the version that answered."""
    params = {"version": str(version)} if version is not None else {}
    digits, served = [], None
    for batch in batches(uploads):
        results, model = predict_batch(url, batch, params)
        served = served or (model or {}).get("version")
        digits += [result.get("digit", -1) if "error" not in result else -1 for result in results]
    return np.array(digits, dtype=np.int64), served


def post_corrections(url: str, examples: Examples, only_wrong: bool) -> dict:
    """Ask the gateway, then send a correction for each answer (or each wrong one); what happened, counted."""
    predicted, version = predictions(url, examples.uploads)
    send = [i for i in range(len(examples.uploads)) if not only_wrong or predicted[i] != examples.labels[i]]

    def post(i: int) -> int:
        data = {"label": str(int(examples.corrected_to[i])), "version": str(version)}
        if predicted[i] >= 0:
            data["predicted"] = str(int(predicted[i]))
        files = {"image": (f"{i}.png", examples.uploads[i], "image/png")}
        return requests.post(f"{url}/v1/feedback", data=data, files=files, timeout=TIMEOUT_S).status_code

    with ThreadPoolExecutor(POST_THREADS) as pool:
        statuses = list(pool.map(post, send))
    return {
        "asked": len(examples.uploads),
        "answered_right": int(np.sum(predicted == examples.labels)),
        "sent": len(send),
        "stored": statuses.count(201),
        "failed": len(send) - statuses.count(201),
        "version": version,
    }


def score(url: str, examples: Examples, version: int) -> float:
    """Share of `examples` version `version` reads as their true digit, through the gateway."""
    digits, _ = predictions(url, examples.uploads, version)
    return float(np.mean(digits == examples.labels))


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m tools.feedback_experiment", description=main.__doc__)
    p.add_argument("command", choices=("post", "score"))
    p.add_argument("--gateway", default=DEFAULT_GATEWAY, help="the gateway's base URL")
    p.add_argument("--style", choices=sorted(STYLES), default="underlined")
    p.add_argument("--count", type=int, default=3000, help="digits to send or score")
    p.add_argument("--digit", type=int, default=None, help="only digits of this class")
    p.add_argument("--relabel", type=int, default=None, help="post: correct every digit to this label")
    p.add_argument("--only-wrong", action="store_true", help="post: correct only the answers that were wrong")
    p.add_argument("--versions", type=int, nargs="+", default=[], help="score: versions to compare")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Post corrections or score versions; one line of figures."""
    options = parse_args(argv)
    split = "train" if options.command == "post" else "test"
    examples = styled(split, options.style, options.count, options.seed, options.digit, options.relabel)
    try:
        if options.command == "post":
            posted = post_corrections(options.gateway, examples, options.only_wrong)
            print(posted)
            if posted["failed"]:
                print(f"feedback_experiment: {posted['failed']} corrections were not stored", file=sys.stderr)
                return 1
        else:
            for version in options.versions:
                share = score(options.gateway, examples, version)
                print(f"version {version}: {share:.2%} of {options.count} {options.style} test digits right")
    except (requests.RequestException, BatchError) as exc:
        print(f"feedback_experiment: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
