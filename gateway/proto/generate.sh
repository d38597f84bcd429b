#!/usr/bin/env bash
# Regenerate the gateway's protobuf modules (needs grpcio-tools; the gateway image only needs protobuf).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m grpc_tools.protoc -I. --python_out=. gateway/proto/tf_serving_subset.proto
