"""Model versions on disk, their load states, version policies and labels, like TF Serving's ServerCore.

Sources of truth followed: server_core.cc (config reload and label rules), get_model_status_impl.cc,
basic_manager.cc ("Servable not found for request: ..."), file_system_storage_path_source.cc (numeric
version directories) and availability_preserving_policy.cc (a new version is loaded before the old one
is unloaded).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from contract.layout import list_versions
from contract.policy import aspired_versions
from serving.model_server.errors import ServingError, failed_precondition, invalid_argument, not_found

log = logging.getLogger(__name__)

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class VersionRecord:
    """What GetModelStatus reports for one version, and the loaded servable when AVAILABLE."""

    version: int
    path: Path
    state: str = START
    error: ServingError | None = None
    servable: object | None = None
    reloadable: bool = False  # ended and no longer aspired: loads again if its directory is aspired again


class ModelManager:
    """Loads, serves and unloads model versions; resolves ModelSpecs to loaded servables."""

    def __init__(
        self,
        load_servable: Callable[[str, int, Path], object],
        *,
        allow_version_labels_for_unavailable_models: bool = False,
        max_num_load_retries: int = 5,
        load_retry_interval_s: float = 60.0,
        file_system_poll_wait_s: float = 1.0,
        on_state_change: Callable[[str, int, str], None] | None = None,
    ):
        self._load_servable = load_servable
        self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
        self._max_retries = max(0, max_num_load_retries)
        self._retry_interval_s = load_retry_interval_s
        self._on_state_change = on_state_change
        self._poll_wait_s = file_system_poll_wait_s if file_system_poll_wait_s > 0 else 1.0
        self._poll_lock = threading.RLock()
        self._lock = threading.RLock()
        self._config_lock = threading.Lock()
        self._stopping = threading.Event()
        self._models: dict[str, object] = {}  # name -> ModelConfig
        self._records: dict[str, dict[int, VersionRecord]] = {}
        self._labels: dict[str, dict[str, int]] | None = None
        self._config = None

    # ------------------------------------------------------------------ configuration

    @property
    def config(self):
        """The ModelServerConfig in force (None before the first one)."""
        return self._config

    def reload_config(self, config, wait_timeout_s: float | None = None) -> None:
        """Apply a validated ModelServerConfig like ServerCore::ReloadConfig, loading what it asks for."""
        with self._config_lock:
            new_models = {model.name: model for model in config.model_config_list.config}
            labels = self._label_map(new_models)
            with self._lock:
                added = [name for name in new_models if name not in self._models]
                removed = [name for name in self._models if name not in new_models]
                self._models = new_models
                self._labels = labels
                self._config = config
                for name in added:
                    self._records.setdefault(name, {})
            for name in removed:
                log.info("Unloading all versions of model %s: it is no longer in the config", name)
                self._unload_versions(name, set(self._records.get(name, {})))
            self.poll_file_system(only=added + [n for n in new_models if n not in added])
            for name in added:
                self._wait_until_settled(name, wait_timeout_s)

    def _label_map(self, new_models: dict) -> dict[str, dict[str, int]]:
        """ServerCore::UpdateModelVersionLabelMap: a label may only name an AVAILABLE version."""
        labels: dict[str, dict[str, int]] = {}
        with self._lock:
            for name, model in new_models.items():
                records = self._records.get(name, {})
                for label, version in model.version_labels.items():
                    allow_any = False
                    if self._allow_unavailable_labels:
                        existing = (self._labels or {}).get(name, {}).get(label)
                        allow_any = existing is None or existing == version
                    record = records.get(version)
                    if not allow_any and (record is None or record.state != AVAILABLE):
                        raise failed_precondition(
                            f"Request to assign label to version {version} of model {name}, which is not "
                            "currently available for inference"
                        )
                    labels.setdefault(name, {})[label] = version
        return labels

    def _wait_until_settled(self, name: str, timeout_s: float | None) -> None:
        """Block until `name` has an AVAILABLE version or every aspired version ended (initial load)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._stopping.is_set():
            with self._lock:
                records = list(self._records.get(name, {}).values())
            if any(r.state == AVAILABLE for r in records):
                return
            if not records or all(r.reloadable for r in records):
                # Like tensorflow_model_server, start-up waits until a version appears on disk.
                self._stopping.wait(self._poll_wait_s)
                self.poll_file_system(only=[name])
                continue
            if records and all(r.state == END for r in records):
                errors = "; ".join(
                    f"{{name: {name} version: {r.version}}} due to error: {r.error.message}"
                    for r in records
                    if r.error
                )
                raise ServingError(
                    grpc.StatusCode.UNKNOWN, f"1 model(s) did not become available: {{{errors}}}"
                )
            if deadline is not None and time.monotonic() > deadline:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE, f"Model {name} did not become available in time"
                )
            time.sleep(0.05)

    # ------------------------------------------------------------------ file system source

    def poll_file_system(self, only: list[str] | None = None) -> None:
        """Look for version directories once and load / unload what the policies ask for."""
        with self._poll_lock:
            self._poll(only)

    def _poll(self, only: list[str] | None) -> None:
        with self._lock:
            models = {name: cfg for name, cfg in self._models.items() if only is None or name in only}
        for name, model in models.items():
            on_disk = list_versions(model.base_path)
            if not on_disk:
                log.warning("No versions of servable %s found under base path %s", name, model.base_path)
            aspired = aspired_versions(model.model_version_policy, on_disk)
            with self._lock:
                records = self._records.setdefault(name, {})
                for version, record in records.items():
                    if record.state == END and version not in aspired:
                        record.reloadable = True
                to_load = [v for v in sorted(aspired) if v not in records or records[v].reloadable]
                for version in to_load:
                    records[version] = VersionRecord(version, on_disk[version])
            for version in to_load:
                self._load(name, version)
            self._unload_unaspired(name, aspired)

    def _load(self, name: str, version: int) -> None:
        with self._lock:
            record = self._records[name][version]
            record.state = LOADING
        self._notify(name, version, LOADING)
        log.info("Loading servable: {name: %s version: %d} from %s", name, version, record.path)
        attempt = 0
        while True:
            try:
                servable = self._load_servable(name, version, record.path)
                break
            except Exception as exc:  # any load failure becomes the version's END error
                error = (
                    exc
                    if isinstance(exc, ServingError)
                    else ServingError(_load_error_code(exc), _first_line(exc))
                )
                if attempt >= self._max_retries or self._stopping.is_set():
                    with self._lock:
                        record.state, record.error = END, error
                    self._notify(name, version, END)
                    log.error(
                        "Loading servable: {name: %s version: %d} failed: %s", name, version, error.message
                    )
                    return
                attempt += 1
                log.warning(
                    "Loading servable: {name: %s version: %d} failed (%s); retry %d/%d in %.1fs",
                    name,
                    version,
                    error.message,
                    attempt,
                    self._max_retries,
                    self._retry_interval_s,
                )
                if self._stopping.wait(self._retry_interval_s):
                    return
        with self._lock:
            record.servable, record.state, record.error = servable, AVAILABLE, None
        self._notify(name, version, AVAILABLE)
        log.info("Successfully loaded servable version {name: %s version: %d}", name, version)

    def _unload_unaspired(self, name: str, aspired: set[int]) -> None:
        with self._lock:
            records = self._records.get(name, {})
            live = {v for v, r in records.items() if r.state in (AVAILABLE, LOADING)}
            unaspired = live - aspired
            if not unaspired:
                return
            aspired_available = any(records[v].state == AVAILABLE for v in aspired if v in records)
            # Availability preserving: keep serving an old version until an aspired one is AVAILABLE,
            # unless nothing is aspired any more (the version directories were removed).
            if aspired and not aspired_available:
                return
        self._unload_versions(name, unaspired)

    def _unload_versions(self, name: str, versions: set[int]) -> None:
        for version in sorted(versions):
            with self._lock:
                record = self._records.get(name, {}).get(version)
                if record is None or record.state != AVAILABLE:
                    continue
                record.state = UNLOADING
            self._notify(name, version, UNLOADING)
            with self._lock:
                # Requests in flight keep their reference to the servable and finish normally.
                record.servable, record.state, record.reloadable = None, END, True
            self._notify(name, version, END)
            log.info("Unloaded servable version {name: %s version: %d}", name, version)

    def _notify(self, name: str, version: int, state: str) -> None:
        if self._on_state_change is not None:
            self._on_state_change(name, version, state)

    def stop(self) -> None:
        """Stop waiting and retrying (shutdown)."""
        self._stopping.set()

    # ------------------------------------------------------------------ requests

    def resolve(self, name: str, version: int | None = None, label: str | None = None):
        """The loaded servable a ModelSpec names (ServerCore::ServableRequestFromModelSpec + BasicManager)."""
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        with self._lock:
            if label is not None:
                if self._labels is None:
                    raise ServingError(grpc.StatusCode.UNAVAILABLE, f"Model labels does not init yet.{label}")
                resolved = self._labels.get(name, {}).get(label)
                if resolved is None:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = resolved
            records = self._records.get(name, {})
            if version is not None:
                record = records.get(version)
                if record is None or record.state != AVAILABLE:
                    raise not_found(f"Servable not found for request: Specific({name}, {version})")
                return record.servable
            available = [v for v, r in records.items() if r.state == AVAILABLE]
            if not available:
                raise not_found(f"Servable not found for request: Latest({name})")
            return records[max(available)].servable

    def version_status(self, name: str, version: int | None = None) -> list[VersionRecord]:
        """Version states for GetModelStatus, newest first, including ended versions."""
        with self._lock:
            records = self._records.get(name, {})
            if version is not None:
                record = records.get(version)
                if record is None:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [_snapshot(record)]
            if not records:
                raise not_found(f"Could not find any versions of model {name}")
            return [_snapshot(records[v]) for v in sorted(records, reverse=True)]

    def has_model(self, name: str) -> bool:
        """Whether the config in force lists a model called `name`."""
        with self._lock:
            return name in self._models

    def labels(self, name: str) -> dict[str, int]:
        """The label map in force for `name`."""
        with self._lock:
            return dict((self._labels or {}).get(name, {}))


def _snapshot(record: VersionRecord) -> VersionRecord:
    return VersionRecord(record.version, record.path, record.state, record.error, None, record.reloadable)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if len(text) > 2000 else text


def _load_error_code(exc: BaseException) -> grpc.StatusCode:
    code = getattr(exc, "error_code", None)
    if isinstance(code, int):
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status
    if isinstance(exc, FileNotFoundError):
        return grpc.StatusCode.NOT_FOUND
    return grpc.StatusCode.UNKNOWN
