"""Lifecycle rules on models.config: policy coverage, accuracy gate, label moves and rollback history."""

import json
from pathlib import Path

import pytest

from stack.lifecycle import (
    Lifecycle,
    LifecycleError,
    Paths,
    ensure_policy_serves,
    mnist_config,
    read_config,
    read_routing,
    served_versions,
)

CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens: the lifecycle must not wait for a gateway


def write_version(base: Path, version: int, accuracy: float | None) -> None:
    extra = base / str(version) / "assets.extra"
    extra.mkdir(parents=True)
    if accuracy is not None:
        (extra / "model_card.json").write_text(json.dumps({"test_accuracy": accuracy}))


@pytest.fixture
def setup(tmp_path):
    base = tmp_path / "models" / "mnist"
    for version, accuracy in [(1, 0.9950), (2, 0.9962), (3, 0.9901), (4, None)]:
        write_version(base, version, accuracy)
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n  config {\n    name: 'mnist'\n"
        f"    base_path: '{base}'\n    model_platform: 'tensorflow'\n"
        "    model_version_policy { specific { versions: 1 } }\n"
        "    version_labels { key: 'stable' value: 1 }\n  }\n}\n"
    )
    paths = Paths(config, tmp_path / "routing.json", CLOSED_PORT_URL)
    return Lifecycle(paths, log=lambda message: None), paths


def entry_of(paths: Paths):
    return mnist_config(read_config(paths.model_config_file))


def test_promote_loads_the_version_then_moves_stable(setup):
    lifecycle, paths = setup
    lifecycle.promote(2)
    entry = entry_of(paths)
    assert entry.version_labels["stable"] == 2
    assert sorted(entry.model_version_policy.specific.versions) == [1, 2]
    assert read_routing(paths.routing_file)["stable_history"] == [1]


def test_less_accurate_version_is_refused_unless_forced(setup):
    lifecycle, paths = setup
    with pytest.raises(LifecycleError, match="below stable version 1"):
        lifecycle.promote(3)
    assert entry_of(paths).version_labels["stable"] == 1
    lifecycle.promote(3, force=True)
    assert entry_of(paths).version_labels["stable"] == 3


def test_version_below_floor_is_refused(setup):
    lifecycle, _ = setup
    with pytest.raises(LifecycleError, match="below the floor"):
        lifecycle.promote(2, floor=0.999)


def test_version_without_model_card_is_refused(setup):
    lifecycle, _ = setup
    with pytest.raises(LifecycleError, match="no model card"):
        lifecycle.promote(4)


def test_missing_version_directory_is_refused(setup):
    lifecycle, _ = setup
    with pytest.raises(LifecycleError, match="no version directory"):
        lifecycle.promote(9, force=True)


def test_rollback_returns_to_previous_stable(setup):
    lifecycle, paths = setup
    lifecycle.promote(2)
    assert lifecycle.rollback() == 1
    assert entry_of(paths).version_labels["stable"] == 1
    with pytest.raises(LifecycleError, match="no earlier stable"):
        lifecycle.rollback()


def test_canary_sets_label_and_share_and_zero_ends_it(setup):
    lifecycle, paths = setup
    lifecycle.canary(2, 25)
    assert entry_of(paths).version_labels["canary"] == 2
    assert read_routing(paths.routing_file)["canary_percent"] == 25
    lifecycle.canary(2, 0)
    assert "canary" not in entry_of(paths).version_labels
    assert read_routing(paths.routing_file)["canary_percent"] == 0


def test_promoting_the_canary_ends_the_canary(setup):
    lifecycle, paths = setup
    lifecycle.canary(2, 10)
    lifecycle.promote(2)
    entry = entry_of(paths)
    assert dict(entry.version_labels) == {"stable": 2}
    assert read_routing(paths.routing_file)["canary_percent"] == 0


@pytest.mark.parametrize("percent", [-1, 101])
def test_canary_percent_out_of_range_is_refused(setup, percent):
    lifecycle, _ = setup
    with pytest.raises(LifecycleError, match="between 0 and 100"):
        lifecycle.canary(2, percent)


def test_policy_coverage_for_latest_all_and_specific(setup):
    _, paths = setup
    entry = entry_of(paths)
    entry.model_version_policy.Clear()
    entry.model_version_policy.latest.num_versions = 2
    assert served_versions(entry) == {3, 4}
    assert ensure_policy_serves(entry, 1) is True
    assert served_versions(entry) == {1, 3, 4}
    entry.model_version_policy.Clear()
    entry.model_version_policy.all.SetInParent()
    assert served_versions(entry) == {1, 2, 3, 4}
    assert ensure_policy_serves(entry, 2) is False


def test_written_config_is_still_valid_tf_serving_text(setup):
    lifecycle, paths = setup
    lifecycle.canary(2, 5)
    text = paths.model_config_file.read_text()
    assert text.startswith("#") and "version_labels" in text
    assert read_config(paths.model_config_file).model_config_list.config[0].name == "mnist"
