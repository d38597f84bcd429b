"""The live state directory: created and seeded from the committed defaults before the stack starts."""

import os
import tempfile
from pathlib import Path

from contract import state


def state_dir(env=os.environ) -> Path:
    """STATE_DIR, or `state/` under the current directory (the repository root for `make`)."""
    return Path(env.get("STATE_DIR", state.STATE_DIR))


def live_model_config(directory: Path) -> Path:
    """The ModelServerConfig the model server reads and the lifecycle edits."""
    return Path(directory) / state.MODEL_CONFIG_FILE


def live_routing_file(directory: Path) -> Path:
    """The routing file the gateway reads and the lifecycle edits."""
    return Path(directory) / state.ROUTING_FILE


def ensure_state(directory: Path, default_config: Path = Path(state.DEFAULT_MODEL_CONFIG_FILE)) -> Path:
    """Create `directory` and copy the committed models.config into it once; return the directory.

    An existing live config is kept: it is the result of earlier promotions. Files are world-readable
    because the containers read them as a non-root user.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    config = live_model_config(directory)
    if not config.exists():
        write_atomically(config, Path(default_config).read_text())
    return directory


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, so a polling server never reads half a file."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, 0o644)  # the containers read it as a non-root user
    os.replace(tmp.name, path)
