"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from flask import Blueprint, Response, current_app, jsonify

from gateway.deadline import Deadline
from gateway.errors import GatewayError, UpstreamUnavailable

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz():
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@ops.get("/readyz")
def readyz():
    """Readiness: the model server answers and the default (non-canary) route's version is AVAILABLE."""
    service = current_app.extensions["gateway.service"]
    deadline = Deadline.after(service.config.upstream_timeout_s)
    try:
        route = service.router.default_route(allow_canary=False, resolve=True, deadline=deadline)
        states = {item.version: item.state for item in service.client.model_status(deadline)}
    except GatewayError as error:
        unavailable = UpstreamUnavailable(f"not ready: {error.message}", code="not_ready")
        raise unavailable from error
    state = states.get(route.version, "UNKNOWN")
    if state != "AVAILABLE":
        raise UpstreamUnavailable(f"not ready: routed version {route.version} is {state}", code="not_ready")
    return jsonify(
        {
            "status": "ready",
            "model": {"name": service.model_name, "version": route.version, "label": route.label},
            "transport": service.client.transport,
        }
    )


@ops.get("/metrics")
def metrics():
    """Prometheus text exposition."""
    body, content_type = current_app.extensions["gateway.metrics"].exposition()
    return Response(body, content_type=content_type)
