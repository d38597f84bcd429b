"""Lifecycle rules: the promotion gate on real model cards, policy edits, and steps that confirm or undo.

The model server here is a fake that answers from the live config file the way TF Serving would (the
policy's versions AVAILABLE, labels resolving once written); tests/integration/test_lifecycle_confirms.py
runs the same steps against real model servers.
"""

import copy
import json
import shutil
from pathlib import Path

import pytest

from contract import layout
from contract.routing import read_routing
from stack import gate, model_config
from stack.lifecycle import Lifecycle, LifecycleError, Settings
from stack.model_status import ModelServerUnavailable, VersionState
from tests.support.processes import REPO_ROOT

BASELINE_CARD = json.loads(layout.model_card_path(REPO_ROOT / "models" / "mnist" / "1").read_text())


def card(errors: int = 40, examples: int = 10_000, **changes) -> dict:
    """The committed baseline's real card with its measurement changed."""
    result = copy.deepcopy(BASELINE_CARD)
    result.update(errors=errors, test_examples=examples, test_accuracy=1 - errors / examples)
    result.update(changes)
    return result


def smoke_card() -> dict:
    """What `train --limit 2000 --test-limit 300` records: 0.999 on 300 test images."""
    return card(errors=0, examples=300, test_accuracy=0.9990)


# ----------------------------------------------------------------------------- the gate


def test_smoke_card_never_passes_against_a_full_test_set_stable():
    with pytest.raises(gate.GateRefused, match="measured on 300 test images, not the full 10000"):
        gate.check_promotion(smoke_card(), 2, card(40), 1)


def test_smoke_card_is_refused_even_without_a_stable():
    with pytest.raises(gate.GateRefused, match="300 test images"):
        gate.check_promotion(smoke_card(), 2, None, None)


def test_stable_measured_on_a_subset_cannot_be_compared():
    with pytest.raises(gate.GateRefused, match="version 1 was measured on 300"):
        gate.check_promotion(card(39), 2, smoke_card(), 1)


@pytest.mark.parametrize(
    ("candidate_errors", "margin", "passes"),
    [(40, 0, True), (39, 0, True), (41, 0, False), (47, 5, False), (45, 5, True)],
)
def test_error_counts_are_compared_with_the_stated_margin(candidate_errors, margin, passes):
    rules = gate.GateRules(max_extra_errors=margin)
    if passes:
        assert "against stable version 1's 40" in gate.check_promotion(
            card(candidate_errors), 2, card(40), 1, rules
        )
    else:
        with pytest.raises(gate.GateRefused, match=f"PROMOTE_MAX_EXTRA_ERRORS={margin} allows at most"):
            gate.check_promotion(card(candidate_errors), 2, card(40), 1, rules)


def test_accuracy_floor_is_applied_as_an_error_count():
    with pytest.raises(gate.GateRefused, match="more than the 100 that PROMOTE_MIN_ACCURACY=0.99"):
        gate.check_promotion(card(101), 2, None, None)
    assert gate.check_promotion(card(100), 2, None, None)


def test_card_measured_on_other_test_files_is_refused():
    other = card(30)
    other["data"]["sha256"]["t10k-labels-idx1-ubyte"] = "0" * 64
    with pytest.raises(gate.GateRefused, match="other test files"):
        gate.check_promotion(other, 2, card(40), 1)


@pytest.mark.parametrize("broken", [None, {"test_accuracy": 0.999}, {**BASELINE_CARD, "data": {}}])
def test_card_without_a_full_measurement_is_refused(broken):
    with pytest.raises(gate.GateRefused, match="FORCE=1"):
        gate.check_promotion(broken, 2, card(40), 1)


def test_gate_rules_from_env():
    assert gate.GateRules.from_env({}) == gate.GateRules(0.99, 5, 0.005)
    assert gate.GateRules.from_env({"PROMOTE_MAX_EXTRA_ERRORS": "3"}).max_extra_errors == 3
    assert gate.GateRules.from_env({"PROMOTE_MAX_CLASS_DROP": "0.01"}).max_class_drop == 0.01
    for bad in ({"PROMOTE_MAX_EXTRA_ERRORS": "-1"}, {"PROMOTE_MAX_CLASS_DROP": "-0.1"}):
        with pytest.raises(ValueError):
            gate.GateRules.from_env(bad)


def with_class_accuracy(result: dict, digit: int, accuracy: float) -> dict:
    result["per_class_accuracy"] = {**result["per_class_accuracy"], str(digit): accuracy}
    return result


@pytest.mark.parametrize(("drop", "passes"), [(0.004, True), (0.005, True), (0.006, False), (0.05, False)])
def test_one_class_falling_beyond_the_margin_is_refused_by_name(drop, passes):
    stable = card(40)
    seven = stable["per_class_accuracy"]["7"]
    # The total barely moves (a relabelled class): only the per-class check can see it.
    candidate = with_class_accuracy(card(38), 7, seven - drop)
    if passes:
        assert "no class more than 0.5% below stable" in gate.check_promotion(candidate, 2, stable, 1)
    else:
        with pytest.raises(
            gate.GateRefused, match=r"reads class 7 worse than stable version 1: .*PROMOTE_MAX_CLASS_DROP"
        ):
            gate.check_promotion(candidate, 2, stable, 1)


def test_every_reason_is_given_at_once_so_a_poisoned_class_is_named_even_when_the_total_fails_too():
    candidate = with_class_accuracy(card(188), 7, 0.8589)
    with pytest.raises(gate.GateRefused) as refused:
        gate.check_promotion(candidate, 3, card(39), 2)
    message = str(refused.value)
    assert "more than the 100 that PROMOTE_MIN_ACCURACY" in message
    assert "PROMOTE_MAX_EXTRA_ERRORS=0 allows at most 39" not in message  # default margin 5
    assert "allows at most 44" in message and "reads class 7 worse than stable version 2: 85.89%" in message
    assert message.endswith("FORCE=1 to promote it anyway")


def test_the_class_named_is_the_one_that_fell_most():
    candidate = with_class_accuracy(with_class_accuracy(card(40), 3, 0.98), 8, 0.95)
    with pytest.raises(gate.GateRefused, match="reads class 8 worse"):
        gate.check_promotion(candidate, 2, card(40), 1)


def retrained(from_version: int = 1, n: int = 50, before: int = 10, after: int = 45) -> dict:
    held_out = {"n": n, "right_before": before, "right_after": after}
    return card(40, retrained={"from_version": from_version, "held_out_corrections": held_out})


def test_retrained_version_passes_when_held_out_corrections_improve():
    verdict = gate.check_promotion(retrained(), 2, card(40), 1)
    assert "held-out corrections 45/50 right against 10/50" in verdict


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (
            retrained(before=30, after=30),
            "does not read more held-out corrections right .*30 of 50 against 30",
        ),
        (retrained(before=30, after=29), "29 of 50 against 30"),
        (retrained(n=0, before=0, after=0), "there were none to measure on"),
        (retrained(from_version=3), "retrained from version 3, but stable is version 1"),
        (card(40, retrained={"from_version": 1}), "does not record its retraining's held-out corrections"),
    ],
)
def test_retrained_version_is_refused_without_a_held_out_gain(candidate, message):
    with pytest.raises(gate.GateRefused, match=message):
        gate.check_promotion(candidate, 2, card(40), 1)


# ----------------------------------------------------------------------------- policy edits


def entry_with(tmp_path: Path, policy: str, labels: dict[str, int], versions=(1, 2, 3, 4)):
    base = tmp_path / "models" / "mnist"
    for version in versions:
        (base / str(version)).mkdir(parents=True, exist_ok=True)
    label_text = "".join(f"version_labels {{ key: '{k}' value: {v} }} " for k, v in labels.items())
    config = model_config.parse_config(
        f"model_config_list {{ config {{ name: 'mnist' base_path: '{base}' model_platform: 'tensorflow' "
        f"model_version_policy {{ {policy} }} {label_text} }} }}"
    )
    return model_config.mnist_entry(config)


def test_latest_policy_is_never_rewritten(tmp_path):
    entry = entry_with(tmp_path, "latest { num_versions: 2 }", {"stable": 4})
    with pytest.raises(model_config.PolicyError, match="not loaded by the version policy latest"):
        model_config.ensure_loads(entry, 1, "", 3)
    assert entry.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model_config.loaded_versions(entry) == {3, 4}


def test_all_policy_already_loads_every_version(tmp_path):
    entry = entry_with(tmp_path, "all {}", {"stable": 1})
    assert model_config.ensure_loads(entry, 4, "", 3) == []
    assert entry.model_version_policy.WhichOneof("policy_choice") == "all"


def test_specific_policy_gains_the_version_and_sheds_the_oldest_unlabelled_beyond_the_bound(tmp_path):
    entry = entry_with(tmp_path, "specific { versions: [1, 2, 3] }", {"stable": 1, "canary": 3})
    changes = model_config.ensure_loads(entry, 4, "", 3)
    assert list(entry.model_version_policy.specific.versions) == [1, 3, 4]
    assert "version 2 is no longer loaded (LIFECYCLE_MAX_LOADED_VERSIONS=3" in changes[1]


def test_labelled_versions_are_kept_even_beyond_the_bound(tmp_path):
    entry = entry_with(tmp_path, "specific { versions: [1] }", {"stable": 1})
    model_config.ensure_loads(entry, 2, "", 1)
    assert list(entry.model_version_policy.specific.versions) == [1, 2]


def test_a_rule_policy_loading_more_than_the_bound_is_reported_not_rewritten(tmp_path):
    entry = entry_with(tmp_path, "all {}", {"stable": 4})
    assert "loads 4 versions [1, 2, 3, 4], more than LIFECYCLE_MAX_LOADED_VERSIONS=3" in (
        model_config.over_bound(entry, "", 3)
    )
    assert model_config.over_bound(entry, "", 4) is None
    assert entry.model_version_policy.WhichOneof("policy_choice") == "all"


def test_retire_refuses_a_labelled_version(tmp_path):
    entry = entry_with(tmp_path, "specific { versions: [1, 2] }", {"stable": 1})
    with pytest.raises(model_config.PolicyError, match="labelled stable"):
        model_config.retire(entry, 1, "", switch_to_specific=False)


def test_retire_drops_a_version_from_a_specific_list(tmp_path):
    entry = entry_with(tmp_path, "specific { versions: [1, 2] }", {"stable": 1})
    model_config.retire(entry, 2, "", switch_to_specific=False)
    assert list(entry.model_version_policy.specific.versions) == [1]


def test_retire_under_all_is_refused_unless_switching_to_specific_is_asked(tmp_path):
    entry = entry_with(tmp_path, "all {}", {"stable": 1})
    with pytest.raises(model_config.PolicyError, match="SPECIFIC=1` switches it to `specific"):
        model_config.retire(entry, 2, "", switch_to_specific=False)
    assert entry.model_version_policy.WhichOneof("policy_choice") == "all"
    changes = model_config.retire(entry, 2, "", switch_to_specific=True)
    assert list(entry.model_version_policy.specific.versions) == [1, 3, 4]
    assert "switched from all { } to specific [1, 3, 4]" in changes[0]


# ----------------------------------------------------------------------------- steps


class FakeModelServer:
    """Answers from the live config as TF Serving would; `states` overrides a version's state."""

    def __init__(self, settings: Settings, address: str = "fake"):
        self.settings = settings
        self.address = address
        self.states: dict[int, VersionState] = {}
        self.down = False
        self.ignores_config = False  # a server that never applies a new config (e.g. it rejects it)
        self.applied = None

    def _entry(self):
        if self.ignores_config and self.applied is not None:
            return self.applied
        entry = model_config.mnist_entry(
            model_config.parse_config(self.settings.model_config_file.read_text())
        )
        self.applied = entry
        return entry

    def versions(self):
        if self.down:
            raise ModelServerUnavailable(
                "the model server at fake did not answer GetModelStatus: UNAVAILABLE"
            )
        loaded = model_config.loaded_versions(self._entry(), self.settings.storage_path_prefix)
        rows = {v: VersionState(v, "AVAILABLE", "OK", "") for v in loaded}
        return {**rows, **self.states}

    def label_version(self, label):
        version = self._entry().version_labels.get(label)
        row = self.versions().get(version)
        return version if row is not None and row.state == "AVAILABLE" else None


@pytest.fixture
def setup(tmp_path):
    base = tmp_path / "models" / "mnist"
    for version, errors in [(1, 40), (2, 35), (3, 60), (4, None)]:
        path = layout.model_card_path(base / str(version))
        path.parent.mkdir(parents=True)
        if errors is not None:
            path.write_text(json.dumps(card(errors)))
    committed = tmp_path / "serving" / "models.config"
    committed.parent.mkdir()
    shutil.copyfile(REPO_ROOT / "serving" / "models.config", committed)
    state = tmp_path / "state"
    live = model_config.parse_config(committed.read_text())
    entry = model_config.mnist_entry(live)
    entry.model_version_policy.Clear()
    entry.model_version_policy.specific.versions.append(1)
    state.mkdir()
    (state / "models.config").write_text(model_config.render_config(live, committed.read_text()))
    settings = Settings(state, storage_path_prefix=str(tmp_path), timeout_s=2.0)
    server = FakeModelServer(settings)
    clock = iter(range(0, 10_000))  # each poll advances one second
    lifecycle = Lifecycle(
        settings, server, log=lambda message: None, sleep=lambda s: None, clock=lambda: next(clock)
    )
    return lifecycle, settings, server, committed


def live_entry(settings: Settings):
    return model_config.mnist_entry(model_config.parse_config(settings.model_config_file.read_text()))


def snapshot(settings: Settings) -> tuple[bytes, bytes | None]:
    routing = settings.routing_file
    return settings.model_config_file.read_bytes(), routing.read_bytes() if routing.exists() else None


def test_promote_loads_the_version_then_moves_stable_in_the_state_dir_only(setup):
    lifecycle, settings, _, committed = setup
    before = committed.read_bytes()
    lifecycle.promote(2)
    entry = live_entry(settings)
    assert entry.version_labels["stable"] == 2
    assert sorted(entry.model_version_policy.specific.versions) == [1, 2]
    assert read_routing(settings.routing_file)["stable_history"] == [1]
    assert committed.read_bytes() == before


def test_worse_version_is_refused_unless_forced(setup):
    lifecycle, settings, _, _ = setup
    with pytest.raises(LifecycleError, match="stable version 1 40"):
        lifecycle.promote(3)
    assert live_entry(settings).version_labels["stable"] == 1
    lifecycle.promote(3, force=True)
    assert live_entry(settings).version_labels["stable"] == 3


def test_version_without_model_card_is_refused(setup):
    lifecycle, _, _, _ = setup
    with pytest.raises(LifecycleError, match="no model card"):
        lifecycle.promote(4)


def test_missing_version_directory_is_refused(setup):
    lifecycle, _, _, _ = setup
    with pytest.raises(LifecycleError, match="no version directory"):
        lifecycle.promote(9, force=True)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            VersionState(2, "END", "NOT_FOUND", "Could not find SavedModel .pb"),
            "failed to load on the model server",
        ),
        (VersionState(2, "LOADING", "OK", ""), "timed out after 2 s waiting for version 2 to be AVAILABLE"),
    ],
    ids=["load_error", "still_loading"],
)
def test_version_that_does_not_become_available_changes_nothing(setup, state, message):
    lifecycle, settings, server, _ = setup
    server.states[2] = state
    before = snapshot(settings)
    with pytest.raises(LifecycleError, match=message):
        lifecycle.promote(2)
    assert snapshot(settings) == before


def test_model_server_down_changes_nothing(setup):
    lifecycle, settings, server, _ = setup
    server.down = True
    before = snapshot(settings)
    with pytest.raises(LifecycleError, match="did not answer GetModelStatus"):
        lifecycle.promote(2)
    with pytest.raises(LifecycleError, match="did not answer"):
        lifecycle.canary(2, 10)
    assert snapshot(settings) == before


@pytest.fixture
def two_servers(setup):
    """The same live config served by two model servers; the lifecycle asks both."""
    _, settings, first, _ = setup
    first.address = "127.0.0.1:8500"
    second = FakeModelServer(settings, "127.0.0.1:8510")
    clock = iter(range(0, 10_000))
    lifecycle = Lifecycle(
        settings,
        log=lambda message: None,
        sleep=lambda s: None,
        clock=lambda: next(clock),
        clients=[first, second],
    )
    return lifecycle, settings, first, second


def test_promote_moves_stable_once_every_model_server_has_the_version(two_servers):
    lifecycle, settings, _, _ = two_servers
    lifecycle.promote(2)
    lifecycle.canary(1, 20)
    assert live_entry(settings).version_labels["stable"] == 2
    assert read_routing(settings.routing_file)["canary_percent"] == 20


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            VersionState(2, "END", "NOT_FOUND", "Could not find SavedModel .pb"),
            "version 2 failed to load on the model server at 127.0.0.1:8510",
        ),
        (
            VersionState(2, "LOADING", "OK", ""),
            "waiting for version 2 .*: version 2 is still LOADING on 127.0.0.1:8510",
        ),
    ],
    ids=["load_error", "still_loading"],
)
def test_a_version_missing_on_one_model_server_moves_no_label(two_servers, state, message):
    lifecycle, settings, _, second = two_servers
    second.states[2] = state
    before = snapshot(settings)
    with pytest.raises(LifecycleError, match=message):
        lifecycle.promote(2)
    with pytest.raises(LifecycleError, match=message):
        lifecycle.canary(2, 10)
    assert snapshot(settings) == before


def test_one_model_server_down_changes_nothing(two_servers):
    lifecycle, settings, _, second = two_servers
    second.down = True
    before = snapshot(settings)
    with pytest.raises(LifecycleError, match="the model server at fake did not answer GetModelStatus"):
        lifecycle.promote(2)
    with pytest.raises(LifecycleError, match="did not answer"):
        lifecycle.canary(2, 10)
    assert snapshot(settings) == before


def test_a_label_one_model_server_never_applies_is_undone(two_servers):
    lifecycle, settings, _, second = two_servers
    lifecycle.promote(2)
    second.ignores_config = True
    before = snapshot(settings)
    with pytest.raises(LifecycleError, match="every model server to apply the label change: 127.0.0.1:8510"):
        lifecycle.rollback()
    assert snapshot(settings) == before


def test_label_the_server_never_applies_restores_config_and_history(setup):
    lifecycle, settings, server, _ = setup
    lifecycle.promote(2)
    server.ignores_config = True
    before = snapshot(settings)
    with pytest.raises(LifecycleError, match="waiting for the model server to apply the label change"):
        lifecycle.rollback()
    assert snapshot(settings) == before


def test_rollback_returns_to_previous_stable(setup):
    lifecycle, settings, _, _ = setup
    lifecycle.promote(2)
    assert lifecycle.rollback() == 1
    assert live_entry(settings).version_labels["stable"] == 1
    with pytest.raises(LifecycleError, match="no earlier stable"):
        lifecycle.rollback()


def test_hand_edited_history_is_a_clear_error(setup):
    lifecycle, settings, _, _ = setup
    settings.routing_file.write_text('{"canary_percent": 0, "stable_history": ["two"]}')
    with pytest.raises(LifecycleError, match="ends in 'two', not a version number"):
        lifecycle.rollback()
    settings.routing_file.write_text('{"canary_percent": 0, "stable_history": 2}')
    with pytest.raises(LifecycleError, match="stable_history is not a list"):
        lifecycle.rollback()


def test_canary_sets_label_and_share_and_zero_ends_it(setup):
    lifecycle, settings, _, _ = setup
    lifecycle.canary(2, 25)
    assert live_entry(settings).version_labels["canary"] == 2
    assert read_routing(settings.routing_file)["canary_percent"] == 25
    lifecycle.canary(2, 0)
    assert "canary" not in live_entry(settings).version_labels
    assert read_routing(settings.routing_file)["canary_percent"] == 0


def test_promoting_the_canary_ends_the_canary(setup):
    lifecycle, settings, _, _ = setup
    lifecycle.canary(2, 10)
    lifecycle.promote(2)
    assert dict(live_entry(settings).version_labels) == {"stable": 2}
    assert read_routing(settings.routing_file)["canary_percent"] == 0


@pytest.mark.parametrize("percent", [-1, 101])
def test_canary_percent_out_of_range_is_refused(setup, percent):
    lifecycle, _, _, _ = setup
    with pytest.raises(LifecycleError, match="between 0 and 100"):
        lifecycle.canary(2, percent)


def test_retire_stops_loading_an_unlabelled_version(setup):
    lifecycle, settings, _, _ = setup
    lifecycle.promote(2)
    with pytest.raises(LifecycleError, match="labelled stable"):
        lifecycle.retire(2)
    lifecycle.retire(1)
    assert list(live_entry(settings).model_version_policy.specific.versions) == [2]


def test_a_second_command_while_one_runs_is_refused(setup):
    import fcntl

    lifecycle, settings, _, _ = setup
    with open(settings.state_dir / ".lifecycle.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = snapshot(settings)
        with pytest.raises(LifecycleError, match="another lifecycle command is running"):
            lifecycle.promote(2)
        assert snapshot(settings) == before
    lifecycle.promote(2)  # released: the next one runs


def test_unreadable_routing_file_is_refused_not_overwritten(setup):
    lifecycle, settings, _, _ = setup
    settings.routing_file.write_text("{not json")
    with pytest.raises(LifecycleError, match="routing file"):
        lifecycle.promote(2)
    assert settings.routing_file.read_text() == "{not json"


def test_written_config_is_still_valid_tf_serving_text_with_its_comments(setup):
    lifecycle, settings, _, _ = setup
    lifecycle.canary(2, 5)
    text = settings.model_config_file.read_text()
    assert text.startswith("# TF Serving model config") and "version_labels" in text
    assert live_entry(settings).name == "mnist"


def test_settings_come_from_the_state_dir_and_env(tmp_path):
    settings = Settings.from_env(
        {"STATE_DIR": str(tmp_path), "TF_SERVING_GRPC_PORT": "9123", "LIFECYCLE_TIMEOUT_S": "7"}
    )
    assert settings.model_config_file == tmp_path / "models.config"
    assert settings.routing_file == tmp_path / "routing.json"
    assert (settings.model_server, settings.timeout_s) == ("127.0.0.1:9123", 7.0)
    assert Settings.from_env({"TF_SERVING_GRPC_TARGET": "127.0.0.1:1,127.0.0.1:2"}).model_server == (
        "127.0.0.1:1,127.0.0.1:2"
    )
    with pytest.raises(LifecycleError, match="bad setting"):
        Settings.from_env({"TF_SERVING_GRPC_TARGET": "a:1,b:2"})


def test_the_servers_a_local_stack_recorded_are_the_ones_asked(tmp_path):
    from stack.services import StackSettings, model_server_places, record_model_servers

    record_model_servers(tmp_path, model_server_places(StackSettings(grpc_port=9500, model_servers=3)))
    settings = Settings.from_env({"RUN_DIR": str(tmp_path), "TF_SERVING_GRPC_PORT": "9123"})
    assert settings.model_server == "127.0.0.1:9500,127.0.0.1:9510,127.0.0.1:9520"
    with pytest.raises(LifecycleError, match="bad setting"):
        Settings.from_env({"LIFECYCLE_TIMEOUT_S": "soon"})
