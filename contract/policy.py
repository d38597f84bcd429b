"""TF Serving's ServableVersionPolicy: which on-disk versions a model config asks the server to load."""

from collections.abc import Iterable


def aspired_versions(policy, on_disk: Iterable[int]) -> set[int]:
    """The versions `policy` (a ServableVersionPolicy proto, or None) aspires to among `on_disk`.

    As in file_system_storage_path_source.cc: `latest { num_versions }` (default 1) takes the highest
    ones, `all` takes every one, `specific` takes the listed ones that exist on disk; no policy is
    `latest` with one version.
    """
    versions = sorted(set(on_disk), reverse=True)
    choice = policy.WhichOneof("policy_choice") if policy is not None else None
    if choice == "all":
        return set(versions)
    if choice == "specific":
        return set(policy.specific.versions) & set(versions)
    count = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions > 0 else 1
    return set(versions[:count])
