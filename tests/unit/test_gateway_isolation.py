"""The gateway stays light: no TensorFlow or Keras, and no connection opened by import or app creation."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import gateway
from gateway.client.grpc_client import GrpcServingClient
from gateway.client.rest_client import RestServingClient
from gateway.config import GatewayConfig
app = gateway.create_app(GatewayConfig(grpc_port=1, rest_port=1))
gateway.create_app(GatewayConfig(transport="rest", grpc_port=1, rest_port=1))
client = app.extensions["gateway.service"].client
HEAVY_ROOTS = ("tensorflow", "keras", "tensorflow_serving")
heavy = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY_ROOTS)
print("HEAVY", heavy)
print("CHANNEL", client._channel)
"""


def test_importing_gateway_and_creating_the_app_does_not_import_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "CHANNEL None" in result.stdout  # the gRPC channel opens on first use, in the worker


def test_requirements_pin_exactly_and_exclude_tensorflow():
    lines = [
        line.split("#")[0].strip()
        for line in (REPO_ROOT / "gateway" / "requirements.txt").read_text().splitlines()
    ]
    pins = [line for line in lines if line]
    assert pins and all("==" in pin for pin in pins)
    names = {pin.split("==")[0].lower() for pin in pins}
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "tensorflow-serving-api"}
    assert {
        "flask",
        "gunicorn",
        "grpcio",
        "protobuf",
        "opencv-python-headless",
        "numpy",
        "pillow",
        "prometheus-client",
    } <= names
