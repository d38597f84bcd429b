"""UI settings read from the environment in one place."""

import os
from dataclasses import dataclass

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
DEFAULT_UI_HOST = "127.0.0.1"
DEFAULT_UI_PORT = 7860
DEFAULT_GATEWAY_TIMEOUT_S = 5.0
# Gradio refuses larger uploads before the UI sees them; the gateway's own MAX_UPLOAD_BYTES default.
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class UIConfig:
    """Where the gateway is, how long to wait for it, and where the UI listens."""

    gateway_url: str = DEFAULT_GATEWAY_URL
    gateway_timeout_s: float = DEFAULT_GATEWAY_TIMEOUT_S
    host: str = DEFAULT_UI_HOST
    port: int = DEFAULT_UI_PORT
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "UIConfig":
        """Build the config from GATEWAY_URL, GATEWAY_TIMEOUT_S, UI_HOST, UI_PORT and UI_MAX_FILE_BYTES."""
        env = os.environ if environ is None else environ
        return cls(
            gateway_url=env.get("GATEWAY_URL", DEFAULT_GATEWAY_URL).rstrip("/"),
            gateway_timeout_s=float(env.get("GATEWAY_TIMEOUT_S", DEFAULT_GATEWAY_TIMEOUT_S)),
            host=env.get("UI_HOST", DEFAULT_UI_HOST),
            port=int(env.get("UI_PORT", DEFAULT_UI_PORT)),
            max_file_bytes=int(env.get("UI_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)),
        )
