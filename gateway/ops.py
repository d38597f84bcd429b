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
    """Readiness: the default (non-canary) route's version is AVAILABLE on at least one model server.

    Each server behind the target is asked on its own; the reply names each one's state of that version.
    """
    service = current_app.extensions["gateway.service"]
    deadline = Deadline.after(service.config.upstream_timeout_s)
    try:
        route = service.router.default_route(allow_canary=False, resolve=True, deadline=deadline)
    except GatewayError as error:
        unavailable = UpstreamUnavailable(f"not ready: {error.message}", code="not_ready")
        raise unavailable from error
    backends = service.client.backend_statuses(deadline)
    states = {row.address: row.state_of(route.version) if row.error is None else "DOWN" for row in backends}
    if "AVAILABLE" not in states.values():
        said = "; ".join(f"{row.address}: {row.error or states[row.address]}" for row in backends)
        raise UpstreamUnavailable(
            f"not ready: routed version {route.version} is AVAILABLE on no model server ({said})",
            code="not_ready",
            details={"backends": states},
        )
    return jsonify(
        {
            "status": "ready",
            "model": {"name": service.model_name, "version": route.version, "label": route.label},
            "transport": service.client.transport,
            "backends": states,
        }
    )


@ops.get("/metrics")
def metrics():
    """Prometheus text exposition."""
    body, content_type = current_app.extensions["gateway.metrics"].exposition()
    return Response(body, content_type=content_type)
