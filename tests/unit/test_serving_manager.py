"""ModelManager: version directories, policies, labels, availability and errors, with a fake loader."""

from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from contract.layout import list_versions
from contract.policy import aspired_versions
from serving.model_server.errors import ServingError
from serving.model_server.manager import AVAILABLE, END, ModelManager


class FakeServable:
    """Stands in for a loaded SavedModel; records which version it is."""

    def __init__(self, name: str, version: int, path: Path):
        self.name, self.version, self.path = name, version, path


class FakeLoader:
    """Loads FakeServables; a directory containing BROKEN fails to load like a corrupt SavedModel."""

    def __init__(self):
        self.loaded: list[int] = []

    def __call__(self, name: str, version: int, path: Path):
        if (path / "BROKEN").exists():
            raise ValueError(f"Error parsing SavedModel at {path}")
        self.loaded.append(version)
        return FakeServable(name, version, path)


def make_versions(base: Path, *names: str) -> None:
    for name in names:
        (base / name).mkdir(parents=True, exist_ok=True)


def config_for(base: Path, policy: str = "", labels: dict[str, int] | None = None):
    labels_text = "".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in (labels or {}).items())
    policy_text = f"model_version_policy {{ {policy} }}" if policy else ""
    text = (
        f'model_config_list {{ config {{ name: "mnist" base_path: "{base}" model_platform: "tensorflow" '
        f"{policy_text} {labels_text} }} }}"
    )
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def manager(allow_unavailable_labels: bool = False) -> tuple[ModelManager, FakeLoader]:
    loader = FakeLoader()
    return ModelManager(
        loader,
        allow_version_labels_for_unavailable_models=allow_unavailable_labels,
        max_num_load_retries=0,
        file_system_poll_wait_s=0.01,
    ), loader


def test_numeric_directories_are_versions_and_others_are_ignored(tmp_path):
    make_versions(tmp_path, "00000123", "7", "staging-8", ".tmp9", "v10")
    (tmp_path / "11").write_text("a file, not a directory")
    assert set(list_versions(tmp_path)) == {123, 7}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("", {5}),
        ("latest { num_versions: 2 }", {5, 3}),
        ("all {}", {1, 3, 5}),
        ("specific { versions: 1 versions: 3 versions: 9 }", {1, 3}),
    ],
)
def test_version_policy_picks_versions(tmp_path, policy, expected):
    make_versions(tmp_path, "1", "3", "5")
    model = config_for(tmp_path, policy).model_config_list.config[0]
    assert aspired_versions(model.model_version_policy, list_versions(tmp_path)) == expected


def test_latest_request_resolves_highest_available_version(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, loader = manager()
    mgr.reload_config(config_for(tmp_path, "all {}"))
    assert mgr.resolve("mnist").version == 2
    assert mgr.resolve("mnist", version=1).version == 1
    assert sorted(loader.loaded) == [1, 2]


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"name": "foo"}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(foo)"),
        (
            {"name": "mnist", "version": 9},
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(mnist, 9)",
        ),
        (
            {"name": "mnist", "label": "nope"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: nope",
        ),
        ({"name": ""}, grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
    ],
)
def test_resolve_errors_match_tf_serving(tmp_path, kwargs, code, message):
    make_versions(tmp_path, "1")
    mgr, _ = manager()
    mgr.reload_config(config_for(tmp_path))
    with pytest.raises(ServingError) as info:
        mgr.resolve(**kwargs)
    assert (info.value.code, info.value.message) == (code, message)


def test_new_version_is_loaded_before_old_one_is_unloaded(tmp_path):
    make_versions(tmp_path, "1")
    states: list[tuple[int, str]] = []
    mgr = ModelManager(
        FakeLoader(),
        max_num_load_retries=0,
        on_state_change=lambda name, version, state: states.append((version, state)),
    )
    mgr.reload_config(config_for(tmp_path))
    make_versions(tmp_path, "2")
    mgr.poll_file_system()
    assert mgr.resolve("mnist").version == 2
    assert states.index((2, AVAILABLE)) < states.index((1, "UNLOADING"))
    assert [(r.version, r.state) for r in mgr.version_status("mnist")] == [(2, AVAILABLE), (1, END)]


def test_broken_new_version_keeps_old_version_serving_and_reports_its_error(tmp_path):
    make_versions(tmp_path, "1")
    mgr, _ = manager()
    mgr.reload_config(config_for(tmp_path, "latest { num_versions: 1 }"))
    make_versions(tmp_path, "2")
    (tmp_path / "2" / "BROKEN").write_text("")
    mgr.poll_file_system()
    mgr.poll_file_system()  # a failed version is not retried on every poll
    assert mgr.resolve("mnist").version == 1
    status = {r.version: r for r in mgr.version_status("mnist")}
    assert status[2].state == END
    assert "Error parsing SavedModel" in status[2].error.message
    assert status[1].state == AVAILABLE


def test_removed_version_directory_is_unloaded(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, _ = manager()
    mgr.reload_config(config_for(tmp_path, "all {}"))
    (tmp_path / "2").rmdir()
    mgr.poll_file_system()
    assert mgr.resolve("mnist").version == 1
    with pytest.raises(ServingError, match=r"Specific\(mnist, 2\)"):
        mgr.resolve("mnist", version=2)


def test_label_resolves_to_its_version(tmp_path):
    make_versions(tmp_path, "1", "2")
    mgr, _ = manager(allow_unavailable_labels=True)
    mgr.reload_config(config_for(tmp_path, "all {}", {"stable": 1, "canary": 2}))
    assert mgr.resolve("mnist", label="stable").version == 1
    assert mgr.resolve("mnist", label="canary").version == 2


def test_label_at_startup_needs_allow_flag(tmp_path):
    make_versions(tmp_path, "1")
    mgr, _ = manager(allow_unavailable_labels=False)
    with pytest.raises(ServingError) as info:
        mgr.reload_config(config_for(tmp_path, "", {"stable": 1}))
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message == (
        "Request to assign label to version 1 of model mnist, which is not currently available for inference"
    )


def test_moving_a_label_to_an_unavailable_version_is_refused_even_with_allow_flag(tmp_path):
    make_versions(tmp_path, "1")
    mgr, _ = manager(allow_unavailable_labels=True)
    mgr.reload_config(config_for(tmp_path, "all {}", {"stable": 1}))
    with pytest.raises(ServingError, match="version 7 of model mnist, which is not currently available"):
        mgr.reload_config(config_for(tmp_path, "all {}", {"stable": 7}))
    assert mgr.resolve("mnist", label="stable").version == 1


def test_status_of_unknown_model_and_version(tmp_path):
    make_versions(tmp_path, "1")
    mgr, _ = manager()
    mgr.reload_config(config_for(tmp_path))
    with pytest.raises(ServingError, match="Could not find any versions of model foo"):
        mgr.version_status("foo")
    with pytest.raises(ServingError, match="Could not find version 4 of model mnist"):
        mgr.version_status("mnist", 4)


def test_startup_fails_when_the_only_version_is_broken(tmp_path):
    make_versions(tmp_path, "1")
    (tmp_path / "1" / "BROKEN").write_text("")
    mgr, _ = manager()
    with pytest.raises(ServingError, match="did not become available"):
        mgr.reload_config(config_for(tmp_path))
