"""Version policies and labels change by HandleReloadConfigRequest and by rewriting the config file."""

import time

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from tests.support.model_server import (
    copy_model,
    default_model_version_dir,
    start_model_server,
    write_model_config,
)

WAIT_S = 30.0


def _start(tmp_path_factory, name: str, poll_flags: list[str]):
    root = tmp_path_factory.mktemp(name)
    base = root / "models" / "mnist"
    for version in (1, 2, 3):
        copy_model(default_model_version_dir(), base, version)
    config_path = write_model_config(root / "models.config", base, policy="latest { num_versions: 1 }")
    server = start_model_server(root, model_config_file=config_path, extra_flags=poll_flags)
    channel = grpc.insecure_channel(server.grpc_target)
    return {"server": server, "base": base, "config_path": config_path, "channel": channel}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A server reconfigured by RPC only (no config file polling, which would undo RPC changes)."""
    # The shipped flags poll the config file (every 2 s); 0 turns that off, or it would undo each RPC.
    started = _start(
        tmp_path_factory,
        "reload_rpc",
        ["--file_system_poll_wait_seconds=1", "--model_config_file_poll_wait_seconds=0"],
    )
    yield started
    started["channel"].close()
    started["server"].stop()


@pytest.fixture(scope="module")
def polled(tmp_path_factory):
    """A server that re-reads its config file every second."""
    started = _start(
        tmp_path_factory,
        "reload_file",
        ["--model_config_file_poll_wait_seconds=1", "--file_system_poll_wait_seconds=1"],
    )
    yield started
    started["channel"].close()
    started["server"].stop()


def states(channel) -> dict[int, str]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "mnist"
    reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return {
        s.version: get_model_status_pb2.ModelVersionStatus.State.Name(s.state)
        for s in reply.model_version_status
    }


def resolved_version(channel, label: str | None = None) -> int:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "mnist"
    if label:
        request.model_spec.version_label = label
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return stub.GetModelMetadata(request, timeout=10).model_spec.version.value


def reload_request(base, policy: str, labels: dict[str, int] | None = None, path: str | None = None):
    labels_text = "".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in (labels or {}).items())
    text = (
        f'config {{ name: "mnist" base_path: "{path or base}" model_platform: "tensorflow" '
        f"model_version_policy {{ {policy} }} {labels_text} }}"
    )
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config.model_config_list)
    return request


def reload(channel, request):
    return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except grpc.RpcError:  # e.g. the label is not there yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_latest_policy_serves_only_newest_version(setup):
    assert states(setup["channel"]) == {3: "AVAILABLE"}
    assert resolved_version(setup["channel"]) == 3


def test_reload_rpc_all_policy_loads_every_version(setup):
    reply = reload(setup["channel"], reload_request(setup["base"], "all {}"))
    assert reply.status.error_code == 0
    wait_for(
        lambda: states(setup["channel"]) == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}, "all loaded"
    )


def test_reload_rpc_specific_policy_unloads_the_rest_and_sets_labels(setup):
    reload(
        setup["channel"],
        reload_request(setup["base"], "specific { versions: 1 versions: 2 }", {"stable": 1, "canary": 2}),
    )
    assert states(setup["channel"]) == {1: "AVAILABLE", 2: "AVAILABLE", 3: "END"}
    assert resolved_version(setup["channel"]) == 2
    assert resolved_version(setup["channel"], "stable") == 1
    assert resolved_version(setup["channel"], "canary") == 2


def test_reload_rpc_refuses_label_on_unavailable_version(setup):
    request = reload_request(setup["base"], "specific { versions: 1 versions: 2 }", {"stable": 3})
    with pytest.raises(grpc.RpcError) as info:
        reload(setup["channel"], request)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == (
        "Request to assign label to version 3 of model mnist, which is not currently available for inference"
    )
    assert resolved_version(setup["channel"], "stable") == 1


def test_reload_rpc_refuses_relative_base_path(setup):
    with pytest.raises(grpc.RpcError) as info:
        reload(setup["channel"], reload_request(setup["base"], "all {}", path="models/mnist"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "to have an absolute path" in info.value.details()


def test_config_file_change_is_picked_up_by_polling(polled):
    channel = polled["channel"]
    assert states(channel) == {3: "AVAILABLE"}
    write_model_config(polled["config_path"], polled["base"], policy="latest { num_versions: 2 }")
    wait_for(lambda: states(channel) == {3: "AVAILABLE", 2: "AVAILABLE"}, "latest 2 policy from the file")
    write_model_config(
        polled["config_path"],
        polled["base"],
        policy="latest { num_versions: 2 }",
        labels={"stable": 2, "canary": 3},
    )
    wait_for(lambda: resolved_version(channel, "stable") == 2, "stable label from the file")
    assert resolved_version(channel, "canary") == 3


def test_config_file_label_on_unloaded_version_is_refused(polled):
    write_model_config(
        polled["config_path"], polled["base"], policy="latest { num_versions: 2 }", labels={"stable": 1}
    )
    wait_for(
        lambda: "Request to assign label to version 1 of model mnist" in polled["server"].process.log_tail(),
        "the refusal in the log",
    )
    assert resolved_version(polled["channel"], "stable") == 2


def test_broken_config_file_keeps_current_config(polled):
    polled["config_path"].write_text("model_config_list { this is not a config")
    wait_for(
        lambda: "Failed to read ModelServerConfig file" in polled["server"].process.log_tail(),
        "the parse error in the log",
    )
    assert resolved_version(polled["channel"], "stable") == 2
    assert states(polled["channel"])[3] == "AVAILABLE"
