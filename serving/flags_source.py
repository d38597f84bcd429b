"""The one source of tensorflow_model_server flags (serving/tfserving.flags) and its local-mode mapping."""

from pathlib import Path

from contract.state import CONTAINER_STATE_DIR

FLAGS_FILE = Path(__file__).with_name("tfserving.flags")
# Where the flags file and the configs sit inside the tfserving container (docker-compose.yml mounts
# serving/ there; CONTAINER_STATE_DIR is the state directory's mount).
CONTAINER_SERVING_DIR = "/serving"


class FlagsFileError(ValueError):
    """The flags file has a line the container entrypoint could not pass through unchanged."""


def read_flags(path: Path = FLAGS_FILE) -> list[str]:
    """The `--name=value` lines of `path`, in order, comments and blank lines dropped."""
    flags = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.startswith("--") or "=" not in text or any(c in text for c in " \t'\"$`\\"):
            raise FlagsFileError(f"{path}:{number}: expected one --name=value without spaces or quotes")
        flags.append(text)
    return flags


def flag_names(flags: list[str]) -> list[str]:
    """The names of `--name=value` flags, in order."""
    return [flag[2:].split("=", 1)[0] for flag in flags]


def container_mounts(serving_dir: Path, state_dir: Path) -> dict[str, Path]:
    """Container path -> host path for the directories the flags name."""
    return {CONTAINER_SERVING_DIR: Path(serving_dir), CONTAINER_STATE_DIR: Path(state_dir)}


def local_flags(
    *,
    state_dir: Path,
    storage_path_prefix: str | Path,
    grpc_port: int,
    rest_port: int,
    serving_dir: Path = FLAGS_FILE.parent,
    path: Path = FLAGS_FILE,
) -> list[str]:
    """The flags of `path` for a model server on this host: container paths mapped, ports set.

    models.config's absolute base_path (/models/mnist) sits in a config file, not a flag, so it is mapped
    by --storage_path_prefix (the local server's one local-only flag): /models is <prefix>/models.
    """
    mounts = container_mounts(Path(serving_dir).resolve(), Path(state_dir).resolve())
    ports = {"port": grpc_port, "rest_api_port": rest_port}
    result = []
    for flag in read_flags(path):
        name, value = flag[2:].split("=", 1)
        result.append(f"--{name}={ports[name] if name in ports else _mapped(value, mounts)}")
    # An empty prefix means base_path as written, as for TF Serving and the lifecycle (not the cwd).
    if str(storage_path_prefix):
        result.append(f"--storage_path_prefix={Path(storage_path_prefix).resolve()}")
    return result


# Flags that say where a server listens and which models it serves: each caller sets these itself.
PLACEMENT_FLAGS = ("port", "rest_api_port", "model_config_file")


def behaviour_flags(serving_dir: Path = FLAGS_FILE.parent, path: Path = FLAGS_FILE) -> list[str]:
    """The file's flags but PLACEMENT_FLAGS, /serving mapped to `serving_dir`: how every server behaves.

    Tests and benchmarks start model servers on their own ports and models with these, so they run what
    `make up` and Compose run (batching, TFLite, timeouts, polling, warm-up).
    """
    mounts = {CONTAINER_SERVING_DIR: Path(serving_dir).resolve()}
    result = []
    for flag in read_flags(path):
        name, value = flag[2:].split("=", 1)
        if name not in PLACEMENT_FLAGS:
            result.append(f"--{name}={_mapped(value, mounts)}")
    return result


def _mapped(value: str, mounts: dict[str, Path]) -> str:
    """`value` with a leading container directory replaced by its host directory."""
    for inside, outside in mounts.items():
        if value == inside or value.startswith(inside + "/"):
            return str(outside) + value[len(inside) :]
    return value
