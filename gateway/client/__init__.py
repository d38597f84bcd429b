"""Clients for TF Serving: one interface, gRPC and REST implementations, chosen by configuration."""

from gateway.client.base import ModelVersionStatus, Prediction, ServingClient
from gateway.config import GatewayConfig


def create_client(config: GatewayConfig) -> ServingClient:
    """The client for the configured transport (nothing connects until the first call)."""
    if config.transport == "grpc":
        from gateway.client.grpc_client import GrpcServingClient

        return GrpcServingClient(config)
    from gateway.client.rest_client import RestServingClient

    return RestServingClient(config)


__all__ = ["ModelVersionStatus", "Prediction", "ServingClient", "create_client"]
