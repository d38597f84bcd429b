"""Model lifecycle: promote, canary and roll back by editing models.config, which TF Serving reloads.

The same steps work against real TF Serving and the local model server: the config file is the single
source of truth, both poll it, and TF Serving's rule that a label may only point at an AVAILABLE version
is kept by loading a version (and waiting for it) before any label moves to it.
"""

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from contract import mnist

APPLY_TIMEOUT_S = 90.0
POLL_INTERVAL_S = 0.5


class LifecycleError(RuntimeError):
    """A lifecycle step was refused or did not take effect; the message says why."""


@dataclass(frozen=True)
class Paths:
    """Where the lifecycle reads and writes."""

    model_config_file: Path
    routing_file: Path
    gateway_url: str
    # Prepended to the config's base_path, as the model server's --storage_path_prefix does.
    storage_path_prefix: str = ""

    @classmethod
    def from_env(cls, env=os.environ) -> "Paths":
        """MODEL_CONFIG_FILE, ROUTING_FILE, GATEWAY_URL, STORAGE_PATH_PREFIX (default: this folder)."""
        return cls(
            Path(env.get("MODEL_CONFIG_FILE", "serving/models.config")),
            Path(env.get("ROUTING_FILE", "serving/routing.json")),
            env.get("GATEWAY_URL", "http://127.0.0.1:8000"),
            env.get("STORAGE_PATH_PREFIX", str(Path.cwd())),
        )


def _config_module():
    # Imported late: the official protos pull in TensorFlow, which only this command needs.
    from tensorflow_serving.config import model_server_config_pb2

    return model_server_config_pb2


def read_config(path: Path):
    """Parse a ModelServerConfig text file with the official proto."""
    config = _config_module().ModelServerConfig()
    text_format.Parse(Path(path).read_text(), config)
    return config


def write_config(path: Path, config) -> None:
    """Write the config atomically, so a polling server never reads half a file."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines(keepends=True)
    except OSError:
        lines = []
    # Keep the file's leading comment block: it explains the config to the people who read it.
    header = "".join(_leading_comments(lines)) or (
        "# TF Serving model config; labels are moved by `make promote/canary/rollback`.\n"
    )
    payload = header + text_format.MessageToString(config)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".models.config.", delete=False) as tmp:
        tmp.write(payload)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def _leading_comments(lines: list[str]) -> list[str]:
    comments = []
    for line in lines:
        if not line.startswith("#"):
            break
        comments.append(line)
    return comments


def mnist_config(config):
    """The `mnist` entry of the config's model list."""
    for entry in config.model_config_list.config:
        if entry.name == mnist.MODEL_NAME:
            return entry
    raise LifecycleError(f"no model named {mnist.MODEL_NAME!r} in the model config")


def model_base(entry, storage_path_prefix: str = "") -> Path:
    """The entry's base path on this machine, with the storage path prefix the server applies."""
    if storage_path_prefix:
        return Path(storage_path_prefix) / entry.base_path.lstrip("/")
    return Path(entry.base_path)


def version_dirs(entry, storage_path_prefix: str = "") -> dict[int, Path]:
    """Numeric version directories under the entry's base path."""
    base = model_base(entry, storage_path_prefix)
    if not base.is_dir():
        return {}
    return {int(p.name): p for p in base.iterdir() if p.is_dir() and p.name.isdigit()}


def served_versions(entry, storage_path_prefix: str = "") -> set[int]:
    """The versions the entry's version policy asks the server to load."""
    available = sorted(version_dirs(entry, storage_path_prefix))
    policy = entry.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(available)
    if kind == "specific":
        return set(policy.specific.versions)
    count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return set(available[-count:])


def ensure_policy_serves(entry, version: int, storage_path_prefix: str = "") -> bool:
    """Make the policy load `version` too, keeping every version it loads now; True when changed."""
    served = served_versions(entry, storage_path_prefix)
    if version in served:
        return False
    keep = served | {version}
    entry.model_version_policy.Clear()
    entry.model_version_policy.specific.versions.extend(sorted(keep))
    return True


def model_card(entry, version: int, storage_path_prefix: str = "") -> dict | None:
    """The version's model card, or None when it has none."""
    path = model_base(entry, storage_path_prefix) / str(version) / "assets.extra" / "model_card.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_routing(path: Path) -> dict:
    """The gateway's routing file: canary share and the history of stable versions."""
    try:
        routing = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        routing = {}
    return {"canary_percent": 0, "stable_history": [], **routing}


def write_routing(path: Path, routing: dict) -> None:
    """Write the routing file atomically (the gateway re-reads it when it changes)."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".routing.", delete=False) as tmp:
        json.dump(routing, tmp, indent=2)
        tmp.write("\n")
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def gateway_models(gateway_url: str) -> dict | None:
    """The gateway's GET /v1/models, or None when the gateway does not answer."""
    try:
        with urllib.request.urlopen(f"{gateway_url}/v1/models", timeout=3) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def wait_for(gateway_url: str, description: str, predicate, timeout_s: float = APPLY_TIMEOUT_S) -> bool:
    """Poll the gateway until `predicate(models)` holds; False when no gateway answers at all."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = gateway_models(gateway_url)
        if seen is None:
            return False
        if predicate(seen):
            return True
        time.sleep(POLL_INTERVAL_S)
    raise LifecycleError(
        f"timed out after {timeout_s:.0f} s waiting for {description}; last seen: {json.dumps(seen)[:600]}"
    )


def _state_of(models: dict, version: int) -> str | None:
    for row in models.get("versions", []):
        if int(row.get("version", -1)) == version:
            return row.get("state")
    return None


def _label_is(models: dict, label: str, version: int | None) -> bool:
    current = models.get("labels", {}).get(label)
    return (None if current is None else int(current)) == version


class Lifecycle:
    """Promote, canary and roll back versions of the `mnist` model."""

    def __init__(self, paths: Paths, log=print):
        self.paths = paths
        self.log = log

    def _load(self):
        config = read_config(self.paths.model_config_file)
        return config, mnist_config(config)

    def _require_version(self, entry, version: int) -> None:
        prefix = self.paths.storage_path_prefix
        if version not in version_dirs(entry, prefix):
            have = sorted(version_dirs(entry, prefix))
            raise LifecycleError(
                f"no version directory {model_base(entry, prefix) / str(version)} (have {have})"
            )

    def _make_available(self, config, entry, version: int) -> None:
        """Load `version` first: TF Serving only lets a label point at an AVAILABLE version."""
        if ensure_policy_serves(entry, version, self.paths.storage_path_prefix):
            write_config(self.paths.model_config_file, config)
            self.log(f"version policy now loads version {version}")
        ok = wait_for(
            self.paths.gateway_url,
            f"version {version} to be AVAILABLE",
            lambda models: _state_of(models, version) == "AVAILABLE",
        )
        if ok:
            self.log(f"version {version} is AVAILABLE")
        else:
            self.log("the gateway does not answer: the change applies when the stack starts")

    def _set_label(self, config, entry, label: str, version: int | None) -> None:
        if version is None:
            entry.version_labels.pop(label, None)
        else:
            entry.version_labels[label] = version
        write_config(self.paths.model_config_file, config)
        if wait_for(
            self.paths.gateway_url,
            f"label {label!r} -> {version}",
            lambda models: _label_is(models, label, version),
        ):
            self.log(
                f"label {label!r} now serves version {version}"
                if version is not None
                else f"label {label!r} removed"
            )

    def stable_version(self) -> int | None:
        """The version the `stable` label points at."""
        _, entry = self._load()
        return entry.version_labels.get(mnist.STABLE_LABEL)

    def check_promotion(self, entry, version: int, floor: float) -> None:
        """Refuse a version whose card accuracy is below the floor or below the current stable's."""
        card = model_card(entry, version, self.paths.storage_path_prefix)
        if card is None or "test_accuracy" not in card:
            raise LifecycleError(
                f"version {version} has no model card with test_accuracy; use FORCE=1 to promote it anyway"
            )
        accuracy = card["test_accuracy"]
        if accuracy < floor:
            raise LifecycleError(
                f"version {version} test accuracy {accuracy:.4%} is below the floor "
                f"{floor:.4%}; use FORCE=1 to promote it anyway"
            )
        stable = entry.version_labels.get(mnist.STABLE_LABEL)
        stable_card = (
            model_card(entry, stable, self.paths.storage_path_prefix) if stable is not None else None
        )
        if stable_card and accuracy < stable_card.get("test_accuracy", 0.0):
            raise LifecycleError(
                f"version {version} test accuracy {accuracy:.4%} is below stable version "
                f"{stable}'s {stable_card['test_accuracy']:.4%}; use FORCE=1 to promote it "
                "anyway"
            )

    def promote(self, version: int, *, force: bool = False, floor: float = 0.99) -> None:
        """Move `stable` to `version` (gated by model-card accuracy unless forced)."""
        config, entry = self._load()
        self._require_version(entry, version)
        previous = entry.version_labels.get(mnist.STABLE_LABEL)
        if previous == version:
            self.log(f"version {version} is already stable")
            return
        if not force:
            self.check_promotion(entry, version, floor)
        self._make_available(config, entry, version)
        routing = read_routing(self.paths.routing_file)
        if entry.version_labels.get(mnist.CANARY_LABEL) == version:
            # The canary became stable: stop splitting traffic before the label goes away.
            routing["canary_percent"] = 0
            write_routing(self.paths.routing_file, routing)
            entry.version_labels.pop(mnist.CANARY_LABEL, None)
        self._set_label(config, entry, mnist.STABLE_LABEL, version)
        if previous is not None:
            routing["stable_history"] = [*routing["stable_history"], previous][-20:]
        write_routing(self.paths.routing_file, routing)

    def rollback(self) -> int:
        """Move `stable` back to the version it pointed at before the last promotion."""
        config, entry = self._load()
        routing = read_routing(self.paths.routing_file)
        if not routing["stable_history"]:
            raise LifecycleError("no earlier stable version to roll back to")
        target = routing["stable_history"][-1]
        self._require_version(entry, target)
        self._make_available(config, entry, target)
        self._set_label(config, entry, mnist.STABLE_LABEL, target)
        routing["stable_history"] = routing["stable_history"][:-1]
        write_routing(self.paths.routing_file, routing)
        return target

    def canary(self, version: int, percent: float) -> None:
        """Send `percent` of default traffic to `version` (0 ends the canary)."""
        if not 0 <= percent <= 100:
            raise LifecycleError(f"PERCENT must be between 0 and 100, not {percent}")
        config, entry = self._load()
        routing = read_routing(self.paths.routing_file)
        if percent == 0:
            routing["canary_percent"] = 0
            write_routing(self.paths.routing_file, routing)
            self._set_label(config, entry, mnist.CANARY_LABEL, None)
            return
        self._require_version(entry, version)
        self._make_available(config, entry, version)
        self._set_label(config, entry, mnist.CANARY_LABEL, version)
        routing["canary_percent"] = percent
        write_routing(self.paths.routing_file, routing)
        self.log(f"{percent:g}% of default traffic now goes to canary version {version}")
