"""The routing file the lifecycle writes and the gateway reads: canary share and stable history."""

import json
from pathlib import Path

DEFAULT_ROUTING = {"canary_percent": 0, "stable_history": []}


class RoutingFileError(ValueError):
    """The routing file exists but is not a JSON object with a numeric canary_percent."""


def read_routing(path: str | Path) -> dict:
    """The routing file's content over the defaults; a missing file is the defaults.

    A file that exists but cannot be parsed raises RoutingFileError: the gateway then keeps its last good
    routing and the lifecycle refuses to overwrite what it cannot read.
    """
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return dict(DEFAULT_ROUTING)
    except OSError as exc:
        raise RoutingFileError(f"cannot read routing file {path}: {exc}") from exc
    try:
        routing = json.loads(text)
        if not isinstance(routing, dict):
            raise TypeError("not a JSON object")
        percent = float(routing.get("canary_percent", 0))
    except (ValueError, TypeError) as exc:
        raise RoutingFileError(f"routing file {path} is invalid: {exc}") from exc
    return {**DEFAULT_ROUTING, **routing, "canary_percent": min(100.0, max(0.0, percent))}
