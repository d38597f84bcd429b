"""Model lifecycle: promote, canary, roll back and retire versions by editing the live models.config.

The live config and routing file live in the state directory (stack/state.py), never in the committed
serving/ files. Each step asks every model server itself (GetModelStatus; several servers share one live
config) and moves a label only once the target version is AVAILABLE on all of them, then confirms on each
that the label resolves to it. When any of that fails (the version ends in an error, is still LOADING at
the deadline, or a server does not answer) the step raises LifecycleError and puts the config and routing
files back byte for byte.
"""

import contextlib
import fcntl
import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from contract import layout, mnist
from contract.routing import RoutingFileError, read_routing
from contract.targets import channel_target
from stack import gate, model_config
from stack.model_status import ModelServers, ModelServerUnavailable, model_server_address
from stack.state import ensure_state, live_model_config, live_routing_file, state_dir, write_atomically

DEFAULT_TIMEOUT_S = 90.0  # loading and warming a version on a busy 2-core machine
POLL_INTERVAL_S = 0.5
HISTORY_LENGTH = 20
LOCK_FILE = ".lifecycle.lock"  # in the state directory: one lifecycle command at a time


class LifecycleError(RuntimeError):
    """A lifecycle step was refused or did not take effect; the message says why."""


@dataclass(frozen=True)
class Settings:
    """Where the lifecycle reads and writes, which server it asks, and its limits (see README)."""

    state_dir: Path
    # The model servers' gRPC target (contract/targets.py): one address, a list, or dns:///name:port.
    model_server: str = "127.0.0.1:8500"
    # Prepended to the config's base_path, as the model server's --storage_path_prefix does.
    storage_path_prefix: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_loaded_versions: int = model_config.DEFAULT_MAX_LOADED_VERSIONS
    gate_rules: gate.GateRules = field(default_factory=gate.GateRules)

    @property
    def model_config_file(self) -> Path:
        """The live ModelServerConfig."""
        return live_model_config(self.state_dir)

    @property
    def routing_file(self) -> Path:
        """The live routing file."""
        return live_routing_file(self.state_dir)

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        """STATE_DIR, the model servers (stack/model_status.py: model_server_address), STORAGE_PATH_PREFIX
        (default: this folder), LIFECYCLE_TIMEOUT_S, LIFECYCLE_MAX_LOADED_VERSIONS, PROMOTE_MIN_ACCURACY,
        PROMOTE_MAX_EXTRA_ERRORS."""
        try:
            settings = cls(
                state_dir=state_dir(env),
                model_server=model_server_address(env),
                storage_path_prefix=env.get("STORAGE_PATH_PREFIX", str(Path.cwd())),
                timeout_s=float(env.get("LIFECYCLE_TIMEOUT_S", DEFAULT_TIMEOUT_S)),
                max_loaded_versions=int(
                    env.get("LIFECYCLE_MAX_LOADED_VERSIONS", model_config.DEFAULT_MAX_LOADED_VERSIONS)
                ),
                gate_rules=gate.GateRules.from_env(env),
            )
            channel_target(settings.model_server)  # a malformed target is a bad setting, not "down"
        except ValueError as exc:
            raise LifecycleError(f"bad setting: {exc}") from None
        if settings.timeout_s <= 0 or settings.max_loaded_versions < 1:
            raise LifecycleError("LIFECYCLE_TIMEOUT_S must be > 0 and LIFECYCLE_MAX_LOADED_VERSIONS >= 1")
        return settings


@dataclass
class _Live:
    """The live config as read at the start of a step."""

    text: str
    config: object
    entry: object
    routing: dict


def _read_optional(path: Path) -> str | None:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return None


def _write_routing(path: Path, routing: dict) -> None:
    write_atomically(path, json.dumps(routing, indent=2) + "\n")


def _one_at_a_time(command):
    """Run `command` holding the state directory's lock; a second command at the same time is refused.

    Two promotions interleaving would each restore or extend the other's history from a stale read.
    """

    @functools.wraps(command)
    def locked(self, *args, **kwargs):
        ensure_state(self.settings.state_dir)
        with open(Path(self.settings.state_dir) / LOCK_FILE, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LifecycleError(
                    f"another lifecycle command is running on {self.settings.state_dir}; try again after it"
                ) from None
            return command(self, *args, **kwargs)  # the lock goes with the file when it closes

    return locked


class Lifecycle:
    """Promote, canary, roll back and retire versions of the `mnist` model."""

    def __init__(
        self, settings: Settings, client=None, log=print, sleep=time.sleep, clock=time.monotonic, clients=None
    ):
        """`client` (one model server) or `clients` (several) replace the servers settings name."""
        self.settings = settings
        if client is not None or clients is not None:
            fixed = [client] if client is not None else list(clients)
            self._servers = lambda: fixed
        else:
            self._servers = ModelServers(settings.model_server).clients
        self.log = log
        self._sleep = sleep
        self._clock = clock

    # ----------------------------------------------------------------- reading

    def _load(self) -> _Live:
        ensure_state(self.settings.state_dir)
        path = self.settings.model_config_file
        text = path.read_text()
        try:
            config = model_config.parse_config(text)
            entry = model_config.mnist_entry(config)
        except (text_format.ParseError, KeyError) as exc:
            raise LifecycleError(f"cannot use the live model config {path}: {exc}") from None
        try:
            routing = read_routing(self.settings.routing_file)
        except RoutingFileError as exc:
            raise LifecycleError(f"{exc}; fix or remove it first") from None
        if not isinstance(routing["stable_history"], list):
            raise LifecycleError(
                f"{self.settings.routing_file}: stable_history is not a list; fix or remove it"
            )
        return _Live(text, config, entry, routing)

    def _version_dir(self, live: _Live, version: int) -> Path:
        versions = model_config.on_disk(live.entry, self.settings.storage_path_prefix)
        if version not in versions:
            base = model_config.base_dir(live.entry, self.settings.storage_path_prefix)
            raise LifecycleError(f"no version directory {base / str(version)} (have {sorted(versions)})")
        return versions[version]

    def _card(self, live: _Live, version: int | None) -> dict | None:
        if version is None:
            return None
        versions = model_config.on_disk(live.entry, self.settings.storage_path_prefix)
        if version not in versions:
            return None
        try:
            return json.loads(layout.model_card_path(versions[version]).read_text())
        except (OSError, ValueError):
            return None

    # ----------------------------------------------------------------- the server

    def _clients(self) -> list:
        try:
            return self._servers()
        except ModelServerUnavailable as exc:
            raise LifecycleError(f"{exc}; is the stack up (`make up`)?") from None

    def _versions(self) -> dict[str, dict]:
        """Each model server's versions by its address; every server must answer."""
        versions = {}
        for client in self._clients():
            try:
                versions[client.address] = client.versions()
            except ModelServerUnavailable as exc:
                raise LifecycleError(f"{exc}; is the stack up (`make up`)?") from None
        return versions

    def _labels(self, label: str) -> dict[str, int | None]:
        """The version `label` resolves to on each model server, by its address."""
        seen = {}
        for client in self._clients():
            try:
                seen[client.address] = client.label_version(label)
            except ModelServerUnavailable as exc:
                raise LifecycleError(str(exc)) from None
        return seen

    def _poll(self, description: str, check) -> None:
        """Call `check()` -> (done, last word) until done (it raises to fail early) or the deadline."""
        deadline = self._clock() + self.settings.timeout_s
        last = "no answer yet"
        while True:
            done, last = check()
            if done:
                return
            if self._clock() >= deadline:
                raise LifecycleError(
                    f"timed out after {self.settings.timeout_s:g} s waiting for {description}: {last}"
                )
            self._sleep(POLL_INTERVAL_S)

    def _where(self, addresses) -> str:
        addresses = list(addresses)
        if len(addresses) == 1:
            return f"the model server at {addresses[0]}"
        return f"every model server ({', '.join(addresses)})"

    def _wait_available(self, version: int) -> None:
        seen: list[str] = []

        def check():
            waiting = []
            servers = self._versions()
            seen[:] = servers
            for address, versions in servers.items():
                row = versions.get(version)
                if row is None:
                    waiting.append(f"the model server at {address} does not know version {version} yet")
                elif row.failed:
                    raise LifecycleError(
                        f"version {version} failed to load on the model server at {address}: "
                        f"{row.error_code}: {row.error_message}"
                    )
                elif row.state != "AVAILABLE":
                    waiting.append(f"version {version} is still {row.state} on {address}")
            return not waiting, "; ".join(waiting)

        everywhere = "" if len(self._clients()) == 1 else " on every model server"
        self._poll(f"version {version} to be AVAILABLE{everywhere}", check)
        self.log(f"version {version} is AVAILABLE on {self._where(seen)}")

    def _wait_unloaded(self, version: int) -> None:
        def check():
            loaded = [
                f"version {version} is {versions[version].state} on {address}"
                for address, versions in self._versions().items()
                if version in versions and versions[version].state != "END"
            ]
            return not loaded, "; ".join(loaded)

        self._poll(f"version {version} to be unloaded", check)

    def _wait_labels(self, wanted: dict[str, int | None]) -> None:
        def check():
            per_label = {label: self._labels(label) for label in wanted}
            differing = [
                f"{address} resolves {label!r} to {version}"
                for label, seen in per_label.items()
                for address, version in seen.items()
                if version != wanted[label]
            ]
            return not differing, f"{'; '.join(differing)}, the config says {wanted}"

        servers = "the model server" if len(self._clients()) == 1 else "every model server"
        self._poll(f"{servers} to apply the label change", check)

    # ----------------------------------------------------------------- writing

    @contextlib.contextmanager
    def _transaction(self):
        """Put the config and routing files back as they were when the block fails in any way."""
        config_path, routing_path = self.settings.model_config_file, self.settings.routing_file
        config_before, routing_before = config_path.read_text(), _read_optional(routing_path)
        try:
            yield
        except BaseException:
            if config_path.read_text() != config_before:
                write_atomically(config_path, config_before)
                self.log(f"restored {config_path} as it was")
            if _read_optional(routing_path) != routing_before:
                if routing_before is None:
                    routing_path.unlink()
                else:
                    write_atomically(routing_path, routing_before)
            raise

    def _write_config(self, live: _Live) -> None:
        write_atomically(self.settings.model_config_file, model_config.render_config(live.config, live.text))

    def _make_available(self, live: _Live, version: int) -> None:
        """Have the policy load `version` and wait until it is AVAILABLE (labels need that)."""
        try:
            changes = model_config.ensure_loads(
                live.entry, version, self.settings.storage_path_prefix, self.settings.max_loaded_versions
            )
        except model_config.PolicyError as exc:
            raise LifecycleError(str(exc)) from None
        if changes:
            self._write_config(live)
            for change in changes:
                self.log(change)
        self._wait_available(version)
        warning = model_config.over_bound(
            live.entry, self.settings.storage_path_prefix, self.settings.max_loaded_versions
        )
        if warning:
            self.log(f"note: {warning}")

    def _set_labels(self, live: _Live, labels: dict[str, int | None]) -> None:
        """Write the label moves, then wait until the server resolves each label as written."""
        for label, version in labels.items():
            if version is None:
                live.entry.version_labels.pop(label, None)
            else:
                live.entry.version_labels[label] = version
        self._write_config(live)
        self._wait_labels(labels)
        for label, version in labels.items():
            self.log(
                f"label {label!r} removed" if version is None else f"label {label!r} serves version {version}"
            )

    def _move_stable(self, live: _Live, version: int) -> None:
        self._make_available(live, version)
        self._set_labels(live, {mnist.STABLE_LABEL: version})
        if live.entry.version_labels.get(mnist.CANARY_LABEL) == version:
            # The canary became stable: both labels name it, so stop splitting, then drop the label.
            live.routing["canary_percent"] = 0
            _write_routing(self.settings.routing_file, live.routing)
            self._set_labels(live, {mnist.CANARY_LABEL: None})

    # ----------------------------------------------------------------- commands

    def stable_version(self) -> int | None:
        """The version the live `stable` label points at."""
        return self._load().entry.version_labels.get(mnist.STABLE_LABEL)

    def gate_verdict(self, version: int) -> str:
        """Why `version` may replace the live stable (LifecycleError naming the reason when it may not)."""
        return self.check_promotion(self._load(), version)

    def check_promotion(self, live: _Live, version: int) -> str:
        """The gate's verdict on `version` against stable (LifecycleError when refused)."""
        stable = live.entry.version_labels.get(mnist.STABLE_LABEL)
        try:
            return gate.check_promotion(
                self._card(live, version), version, self._card(live, stable), stable, self.settings.gate_rules
            )
        except gate.GateRefused as exc:
            raise LifecycleError(str(exc)) from None

    @_one_at_a_time
    def promote(self, version: int, *, force: bool = False) -> None:
        """Move `stable` to `version` (gated by the model cards unless forced)."""
        live = self._load()
        self._version_dir(live, version)
        previous = live.entry.version_labels.get(mnist.STABLE_LABEL)
        if previous == version:
            self.log(f"version {version} is already stable")
            return
        self.log("promotion gate skipped (FORCE=1)" if force else self.check_promotion(live, version))
        self._versions()  # the server answers before anything is written
        with self._transaction():
            self._move_stable(live, version)
            if previous is not None:
                live.routing["stable_history"] = [*live.routing["stable_history"], previous][-HISTORY_LENGTH:]
            _write_routing(self.settings.routing_file, live.routing)

    @_one_at_a_time
    def rollback(self) -> int:
        """Move `stable` back to the version it pointed at before the last promotion; return it."""
        live = self._load()
        history = list(live.routing["stable_history"])
        if not history:
            raise LifecycleError("no earlier stable version to roll back to")
        try:
            target = int(history[-1])
        except (TypeError, ValueError):
            raise LifecycleError(
                f"the routing file's stable_history ends in {history[-1]!r}, not a version number"
            ) from None
        self._version_dir(live, target)
        self._versions()
        with self._transaction():
            self._move_stable(live, target)
            live.routing["stable_history"] = history[:-1]
            _write_routing(self.settings.routing_file, live.routing)
        return target

    @_one_at_a_time
    def canary(self, version: int, percent: float) -> None:
        """Send `percent` of default traffic to `version` (0 ends the canary)."""
        if not 0 <= percent <= 100:
            raise LifecycleError(f"PERCENT must be between 0 and 100, not {percent}")
        live = self._load()
        if percent == 0:
            self._end_canary(live)
            return
        self._version_dir(live, version)
        if live.entry.version_labels.get(mnist.STABLE_LABEL) == version:
            raise LifecycleError(f"version {version} is stable; a canary tries a different version")
        self._versions()
        with self._transaction():
            self._make_available(live, version)
            self._set_labels(live, {mnist.CANARY_LABEL: version})
            live.routing["canary_percent"] = percent
            _write_routing(self.settings.routing_file, live.routing)
        self.log(f"{percent:g}% of default traffic now goes to canary version {version}")

    def _end_canary(self, live: _Live) -> None:
        self._versions()
        with self._transaction():
            # Traffic first, so no request is routed to a label that is about to go.
            live.routing["canary_percent"] = 0
            _write_routing(self.settings.routing_file, live.routing)
            if mnist.CANARY_LABEL in live.entry.version_labels:
                self._set_labels(live, {mnist.CANARY_LABEL: None})
            else:
                self.log("no canary label was set")
        self.log("the canary has ended: default traffic goes to stable")

    @_one_at_a_time
    def retire(self, version: int, *, switch_to_specific: bool = False) -> None:
        """Stop loading unlabelled `version` (its directory stays); see model_config.retire for policies."""
        live = self._load()
        try:
            changes = model_config.retire(
                live.entry, version, self.settings.storage_path_prefix, switch_to_specific=switch_to_specific
            )
        except model_config.PolicyError as exc:
            raise LifecycleError(str(exc)) from None
        self._versions()
        with self._transaction():
            self._write_config(live)
            for change in changes:
                self.log(change)
            self._wait_unloaded(version)
        self.log(f"version {version} is unloaded; its directory stays on disk")
