"""`python -m ui` starts the Gradio app."""

import os

# Set before gradio is imported: no telemetry calls from a service that must only talk to the gateway.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from ui.app import main  # noqa: E402

if __name__ == "__main__":
    main()
