"""make trust: the held-out "not a digit" and false-reject checks of issue 13, through the gateway.

Sends every set of tools/trust_sets.py as uploads to POST /v1/predict/batch, reads each slot's
`is_digit`, `digit_score` and `digit`, prints a table and writes reports/trust.json and reports/trust.md.
A slot the gateway refuses as unusable (422: no digit found, not a digit) counts as rejected. Exits 1 when
a target is missed or the served version gives no judgement (--no-fail only reports). Uses a running
gateway (--gateway URL) or starts the local model server and a gateway on one version itself.
"""

import argparse
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from contract.layout import list_versions
from tests.support.processes import REPO_ROOT
from tools.batch_client import BatchError, batches, predict_batch, start_stack
from tools.trust_sets import DIGIT, SETS, SETS_BY_NAME, Samples, TrustSet

REPORTS = REPO_ROOT / "reports"
MODELS_DIR = REPO_ROOT / "models" / "mnist"
IN_FLIGHT = 2  # batches sent at once: the gateway preprocesses one while the model answers another
UNUSABLE_STATUS = 422  # the gateway's "no digit found" / "not a digit": the input was judged, and refused
NOT_A_DIGIT = "not_a_digit"
FAILING = ("fail", "no judgement", "error")
DEFAULT_SEED = 0  # also the seed of make retrain's trust rows (training/trust_figures.py)


def outcome(slot: dict) -> str:
    """What happened to one upload: accepted, rejected_by_model, refused_by_gateway, unjudged or error."""
    if "error" in slot:
        if slot.get("status") != UNUSABLE_STATUS:
            return "error"
        # not_a_digit is the model's own judgement (a gateway asked to reject); the rest are the gateway's.
        return "rejected_by_model" if slot["error"].get("code") == NOT_A_DIGIT else "refused_by_gateway"
    is_digit = slot.get("is_digit")
    if is_digit is None:  # a version without the judgement outputs: nothing to count either way
        return "unjudged"
    return "accepted" if is_digit else "rejected_by_model"


def tally(results: list[dict], labels: np.ndarray | None, kinds: list[str] | None = None) -> dict:
    """Outcomes counted, the rejected share, digit_score quantiles, accuracy for a digit set, per kind."""
    outcomes = [outcome(slot) for slot in results]
    counts = Counter(outcomes)
    codes = Counter(slot["error"].get("code", "?") for slot in results if "error" in slot)
    scores = [float(slot["digit_score"]) for slot in results if slot.get("digit_score") is not None]
    n = len(results)
    row = {
        "n": n,
        "accepted": counts["accepted"],
        "rejected": counts["rejected_by_model"] + counts["refused_by_gateway"],
        "rejected_by_model": counts["rejected_by_model"],
        "refused_by_gateway": counts["refused_by_gateway"],
        "unjudged": counts["unjudged"],
        "errors": counts["error"],
        "error_codes": dict(codes),
        "digit_score": _quantiles(scores),
    }
    row["rejected_rate"] = row["rejected"] / n if n else 0.0
    rejected = [kind in ("rejected_by_model", "refused_by_gateway") for kind in outcomes]
    if labels is not None:
        right = [slot.get("digit") == int(label) for slot, label in zip(results, labels, strict=True)]
        accepted_right = sum(r for r, o in zip(right, outcomes, strict=True) if o == "accepted")
        row["accuracy"] = sum(right) / n if n else 0.0  # a refused digit counts as wrong
        row["accuracy_accepted"] = accepted_right / row["accepted"] if row["accepted"] else None
        kinds = kinds or [str(int(label)) for label in labels]
    if kinds is not None:
        by_kind: dict[str, dict] = {}
        for kind, was_rejected in zip(kinds, rejected, strict=True):
            entry = by_kind.setdefault(kind, {"n": 0, "rejected": 0})
            entry["n"] += 1
            entry["rejected"] += was_rejected
        row["by_kind"] = dict(sorted(by_kind.items()))
    return row


def _quantiles(scores: list[float]) -> dict | None:
    if not scores:
        return None
    values = np.asarray(scores)
    return {
        "mean": float(values.mean()),
        **{f"p{q:02d}": float(np.percentile(values, q)) for q in (5, 50, 95)},
    }


def verdict(trust_set: TrustSet, row: dict) -> str:
    """pass / fail against the set's target, 'info' without one; a set with errors or no judgement fails."""
    if row["errors"]:
        return "error"
    if row["unjudged"]:
        return "no judgement"
    if trust_set.target is None:
        return "info"
    if trust_set.kind == DIGIT:
        met = row["rejected_rate"] <= trust_set.target
    else:
        met = row["rejected_rate"] >= trust_set.target
    if trust_set.min_accuracy is not None:
        met = met and row["accuracy"] >= trust_set.min_accuracy
    return "pass" if met else "fail"


def generate(trust_set: TrustSet, n: int, seed: int) -> tuple[Samples, float]:
    """The set's uploads and the seconds it took to make them."""
    start = time.perf_counter()
    samples = trust_set.make(n, seed)
    return samples, time.perf_counter() - start


def run_set(url: str, trust_set: TrustSet, samples: Samples, params: dict[str, str]) -> dict:
    """Send one set through the gateway (IN_FLIGHT batches at a time, results in order), count and judge."""
    start = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        replies = list(pool.map(lambda batch: predict_batch(url, batch, params), batches(samples.images)))
    results = [slot for slots, _ in replies for slot in slots]
    versions = {model.get("version") for _, model in replies if model is not None}
    row = {"set": trust_set.name, "kind": trust_set.kind, **tally(results, samples.labels, samples.kinds)}
    row.update(
        {
            "target": trust_set.target,
            "min_accuracy": trust_set.min_accuracy,
            "status": verdict(trust_set, row),
            "versions": sorted(v for v in versions if v is not None),
            "predict_s": round(time.perf_counter() - start, 2),
        }
    )
    return row


def _percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f} %"


def _target(row: dict) -> str:
    if row["target"] is None:
        return "-"
    sign = "<=" if row["kind"] == DIGIT else ">="
    text = f"{sign} {_percent(row['target'], 1)}"
    if row["min_accuracy"] is not None:
        text += f", accuracy >= {_percent(row['min_accuracy'], 1)}"
    return text


def table(rows: list[dict]) -> list[str]:
    """The report as Markdown table lines (also what the terminal shows)."""
    lines = [
        "| set | kind | n | rejected | of which refused by gateway | target | result | accuracy | "
        "accuracy of accepted | median digit_score |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        median = row["digit_score"]["p50"] if row["digit_score"] else None
        lines.append(
            f"| {row['set']} | {row['kind']} | {row['n']} | {_percent(row['rejected_rate'])} | "
            f"{row['refused_by_gateway']} | {_target(row)} | {row['status']} | "
            f"{_percent(row.get('accuracy'))} | {_percent(row.get('accuracy_accepted'))} | "
            f"{'-' if median is None else f'{median:.3f}'} |"
        )
    return lines


def markdown(report: dict) -> str:
    """reports/trust.md: what was measured, the table, and what failed."""
    versions = sorted({v for row in report["sets"] for v in row["versions"]})
    failed = [row["set"] for row in report["sets"] if row["status"] in FAILING]
    lines = [
        "# make trust: held-out non-digit and digit sets through the gateway",
        "",
        f"Model version(s) {', '.join(map(str, versions)) or '?'}, seed {report['seed']}, "
        f"{sum(row['n'] for row in report['sets'])} uploads in {report['runtime_s']:.0f} s. "
        "Rejected = `is_digit` false or the upload refused with a 422 (no digit found); digit sets' "
        "rejected share is their false-reject rate, and accuracy counts a refused digit as wrong.",
        "",
        *table(report["sets"]),
        "",
        f"Result: {'every target met' if not failed else 'missed: ' + ', '.join(failed)}.",
    ]
    if any(row["unjudged"] for row in report["sets"]):
        lines.append("Some slots had no `is_digit`: the served version has no judgement outputs.")
    lines += ["", "Rejected by kind (character, shape, photo or digit):", ""]
    lines += [f"- {row['set']}: {by_kind(row)}" for row in report["sets"] if row.get("by_kind")]
    return "\n".join(lines) + "\n"


def by_kind(row: dict) -> str:
    """Each kind of a set as "kind rejected/n", on one line."""
    return ", ".join(f"{kind} {entry['rejected']}/{entry['n']}" for kind, entry in row["by_kind"].items())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (`python -m tools.trust --help`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", help="base URL of a running gateway (default: start one)")
    parser.add_argument("--version", type=int, help="model version to test (default: newest under --models)")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="TF Serving base path of the model")
    parser.add_argument("--sets", help=f"comma-separated subset of: {', '.join(SETS_BY_NAME)}")
    parser.add_argument("--limit", type=int, help="at most this many uploads per set (a quick look)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generation seed")
    parser.add_argument("--reports", type=Path, default=REPORTS, help="where trust.json and trust.md go")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a target is missed")
    args = parser.parse_args(argv)
    unknown = set((args.sets or "").split(",")) - set(SETS_BY_NAME) - {""}
    if unknown:
        parser.error(f"unknown set(s) {', '.join(sorted(unknown))}; known: {', '.join(SETS_BY_NAME)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sets, print the table, write the reports; 1 when a target is missed."""
    args = parse_args(argv)
    chosen = [SETS_BY_NAME[name] for name in args.sets.split(",")] if args.sets else list(SETS)
    params = {} if args.version is None else {"version": str(args.version)}
    services, url = [], args.gateway
    start = time.perf_counter()
    # A SIGTERM (a stopped make) unwinds like Ctrl-C, so the finally below stops the services it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if url is None:
            versions = list_versions(args.models)
            version = args.version if args.version is not None else max(versions, default=None)
            if version not in versions:
                print(f"trust: no model version {version} under {args.models}", file=sys.stderr)
                return 1
            url, services = start_stack(args.models, version, Path(tempfile.mkdtemp(prefix="trust-")))
        rows = []
        sizes = [trust_set.n if args.limit is None else min(trust_set.n, args.limit) for trust_set in chosen]
        # The next set is generated while the gateway works on this one (one ahead: bounded memory).
        with ThreadPoolExecutor(1) as maker:
            upcoming = maker.submit(generate, chosen[0], sizes[0], args.seed)
            for index, trust_set in enumerate(chosen):
                samples, generate_s = upcoming.result()
                if index + 1 < len(chosen):
                    upcoming = maker.submit(generate, chosen[index + 1], sizes[index + 1], args.seed)
                rows.append(run_set(url, trust_set, samples, params) | {"generate_s": round(generate_s, 2)})
                print(table(rows)[-1], file=sys.stderr, flush=True)
    except (BatchError, requests.RequestException) as error:
        print(f"trust: {error}", file=sys.stderr)
        return 1
    finally:
        for service in services:
            service.stop()
    report = {"seed": args.seed, "runtime_s": round(time.perf_counter() - start, 1), "sets": rows}
    report["passed"] = not any(row["status"] in FAILING for row in rows)
    args.reports.mkdir(parents=True, exist_ok=True)
    (args.reports / "trust.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.reports / "trust.md").write_text(text)
    print(text)
    if not report["passed"]:
        print("trust: a target was missed (see the table)", file=sys.stderr)
    return 0 if report["passed"] or args.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
