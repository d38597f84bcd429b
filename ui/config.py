"""UI settings read from the environment in one place."""

import os
from dataclasses import dataclass

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
DEFAULT_UI_HOST = "127.0.0.1"
DEFAULT_UI_PORT = 7860
DEFAULT_GATEWAY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class UIConfig:
    """Where the gateway is, how long to wait for it, and where the UI listens."""

    gateway_url: str = DEFAULT_GATEWAY_URL
    gateway_timeout_s: float = DEFAULT_GATEWAY_TIMEOUT_S
    host: str = DEFAULT_UI_HOST
    port: int = DEFAULT_UI_PORT

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "UIConfig":
        """Build the config from GATEWAY_URL, GATEWAY_TIMEOUT_S, UI_HOST and UI_PORT."""
        env = os.environ if environ is None else environ
        return cls(
            gateway_url=env.get("GATEWAY_URL", DEFAULT_GATEWAY_URL).rstrip("/"),
            gateway_timeout_s=float(env.get("GATEWAY_TIMEOUT_S", DEFAULT_GATEWAY_TIMEOUT_S)),
            host=env.get("UI_HOST", DEFAULT_UI_HOST),
            port=int(env.get("UI_PORT", DEFAULT_UI_PORT)),
        )
