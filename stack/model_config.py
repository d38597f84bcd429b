"""The live ModelServerConfig: read, write atomically, and the version-policy edits the lifecycle makes.

The policy the operator chose is never changed in kind. A `specific` list gets the version a label is
about to point at (and sheds the oldest unlabelled versions beyond the bound); `all` and `latest` are
left alone, and a version they do not load is refused with what to change.
"""

from pathlib import Path

from google.protobuf import text_format

from contract import layout, mnist
from contract.policy import aspired_versions

DEFAULT_MAX_LOADED_VERSIONS = 3  # stable, canary and the previous stable (an instant rollback)
DEFAULT_HEADER = "# TF Serving model config (live state), edited by `make promote/canary/rollback/retire`.\n"


class PolicyError(ValueError):
    """The version policy does not allow the step; the message says what to change."""


def _config_module():
    # Imported late: the official protos pull in TensorFlow, which only the lifecycle commands need.
    from tensorflow_serving.config import model_server_config_pb2

    return model_server_config_pb2


def parse_config(text: str):
    """A ModelServerConfig from text format, with the official proto."""
    config = _config_module().ModelServerConfig()
    text_format.Parse(text, config)
    return config


def render_config(config, previous_text: str = "") -> str:
    """Text format of `config`, under the leading comment block of `previous_text` (kept for readers)."""
    header = []
    for line in previous_text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header.append(line)
    return ("".join(header) or DEFAULT_HEADER) + text_format.MessageToString(config)


def mnist_entry(config):
    """The `mnist` entry of the config's model list; KeyError when there is none."""
    for entry in config.model_config_list.config:
        if entry.name == mnist.MODEL_NAME:
            return entry
    raise KeyError(f"no model named {mnist.MODEL_NAME!r} in the model config")


def base_dir(entry, storage_path_prefix: str = "") -> Path:
    """The entry's base path on this machine, under the prefix the server applies."""
    return Path(layout.with_prefix(entry.base_path, storage_path_prefix))


def on_disk(entry, storage_path_prefix: str = "") -> dict[int, Path]:
    """Version directories under the entry's base path."""
    return layout.list_versions(base_dir(entry, storage_path_prefix))


def _policy(entry):
    return entry.model_version_policy if entry.HasField("model_version_policy") else None


def policy_text(entry) -> str:
    """The policy as it reads in the config file, for messages."""
    policy = _policy(entry)
    return text_format.MessageToString(policy, as_one_line=True) if policy else "(none: latest 1)"


def loaded_versions(entry, storage_path_prefix: str = "") -> set[int]:
    """The versions the entry's policy asks the server to load (TF Serving's rule, contract/policy)."""
    return aspired_versions(_policy(entry), on_disk(entry, storage_path_prefix))


def labelled(entry) -> set[int]:
    """Versions some label points at."""
    return set(entry.version_labels.values())


def ensure_loads(entry, version: int, storage_path_prefix: str, max_loaded: int) -> list[str]:
    """Make the policy load `version`; return what changed, as sentences ([] when it already loads it).

    Only a `specific` policy is edited: `version` is added, then the lowest unlabelled versions are dropped
    while more than `max_loaded` are listed. PolicyError for `latest` or no policy (TF Serving decides
    which versions those load; the operator changes them).
    """
    if version in loaded_versions(entry, storage_path_prefix):
        return []
    policy = _policy(entry)
    if policy is None or policy.WhichOneof("policy_choice") != "specific":
        raise PolicyError(
            f"version {version} is not loaded by the version policy {policy_text(entry)}, and a label may "
            "only point at a loaded version; change the policy in the live model config (for example "
            "`latest { num_versions: N }` with a larger N, or `specific { versions: ... }`)"
        )
    listed = set(policy.specific.versions) | {version}
    changes = [f"version policy now also loads version {version}"]
    keep = labelled(entry) | {version}
    for old in sorted(listed - keep):
        if len(listed) <= max_loaded:
            break
        listed.discard(old)
        changes.append(
            f"version {old} is no longer loaded (LIFECYCLE_MAX_LOADED_VERSIONS={max_loaded}; "
            f"`make retire` chooses which)"
        )
    del policy.specific.versions[:]
    policy.specific.versions.extend(sorted(listed))
    return changes


def over_bound(entry, storage_path_prefix: str, max_loaded: int) -> str | None:
    """A warning when a rule policy (`all`, `latest`) loads more than `max_loaded` versions, else None.

    The lifecycle does not narrow such a policy by itself (it is the operator's choice); it says how to.
    """
    loaded = loaded_versions(entry, storage_path_prefix)
    if len(loaded) <= max_loaded or _policy(entry) is None:
        return None
    if entry.model_version_policy.WhichOneof("policy_choice") == "specific":
        return None
    spare = sorted(loaded - labelled(entry))
    return (
        f"the version policy {policy_text(entry)} loads {len(loaded)} versions {sorted(loaded)}, more than "
        f"LIFECYCLE_MAX_LOADED_VERSIONS={max_loaded}; `make retire VERSION=N SPECIFIC=1` unloads an "
        f"unlabelled one ({spare}) and switches the policy to `specific`"
    )


def retire(entry, version: int, storage_path_prefix: str, *, switch_to_specific: bool) -> list[str]:
    """Stop loading unlabelled `version`; return what changed. PolicyError when the policy cannot say so.

    `specific` drops it from the list. `all` and `latest` load by rule, not by list: retiring one version
    means switching to `specific` with the versions loaded now, which also stops new versions from
    loading; that happens only with `switch_to_specific` (SPECIFIC=1) and is said in the result.
    """
    labels = sorted(name for name, value in entry.version_labels.items() if value == version)
    if labels:
        raise PolicyError(
            f"version {version} is labelled {', '.join(labels)}; move the label first "
            "(`make promote`, `make canary VERSION=N PERCENT=0`)"
        )
    loaded = loaded_versions(entry, storage_path_prefix)
    if version not in loaded:
        raise PolicyError(f"version {version} is not loaded (the policy loads {sorted(loaded)})")
    policy = entry.model_version_policy
    if policy.WhichOneof("policy_choice") == "specific":
        remaining = sorted(set(policy.specific.versions) - {version})
        del policy.specific.versions[:]
        policy.specific.versions.extend(remaining)
        return [f"version policy no longer loads version {version}"]
    if not switch_to_specific:
        raise PolicyError(
            f"the version policy {policy_text(entry)} loads versions by rule, so one version cannot be "
            f"retired within it; `make retire VERSION={version} SPECIFIC=1` switches it to "
            f"`specific {{ versions: {sorted(loaded - {version})} }}` (then new versions no longer load "
            "until listed), or edit the live model config yourself"
        )
    was = policy_text(entry)
    remaining = sorted(loaded - {version})
    policy.Clear()
    policy.specific.versions.extend(remaining)
    return [
        f"version policy switched from {was} to specific {remaining}, as SPECIFIC=1 asked: new versions "
        "now load only when promoted or canaried"
    ]
