"""Model server targets: one address, a list, gRPC's ipv4:/ipv6: URIs, dns: names and Unix sockets."""

import socket

import pytest

from contract.targets import TargetError, backend_addresses, channel_target, listed_addresses, target_for
from gateway.config import GatewayConfig


@pytest.mark.parametrize(
    ("spec", "channel", "listed"),
    [
        ("127.0.0.1:8500", "127.0.0.1:8500", ("127.0.0.1:8500",)),
        ("tfserving:8500", "tfserving:8500", ("tfserving:8500",)),
        (
            "127.0.0.1:8500,127.0.0.1:8510",
            "ipv4:127.0.0.1:8500,127.0.0.1:8510",
            ("127.0.0.1:8500", "127.0.0.1:8510"),
        ),
        (
            "ipv4:10.0.0.1:8500,10.0.0.2:8500",
            "ipv4:10.0.0.1:8500,10.0.0.2:8500",
            ("10.0.0.1:8500", "10.0.0.2:8500"),
        ),
        ("ipv6:[::1]:8500,[::1]:8510", "ipv6:[::1]:8500,[::1]:8510", ("[::1]:8500", "[::1]:8510")),
        ("unix:/run/tfs/grpc.sock", "unix:/run/tfs/grpc.sock", ("unix:/run/tfs/grpc.sock",)),
        ("dns:///tfserving-headless:8500", "dns:///tfserving-headless:8500", None),
    ],
)
def test_each_form_gives_a_channel_target_and_its_servers(spec, channel, listed):
    assert channel_target(spec) == channel
    assert listed_addresses(spec) == listed


@pytest.mark.parametrize(
    "spec",
    ["", "unix:", "localhost:8500,localhost:8510", "127.0.0.1:8500,127.0.0.1", "ipv4:", "dns:///tfserving"],
)
def test_unusable_targets_say_which_form_would_do(spec):
    with pytest.raises(TargetError):
        channel_target(spec)


def test_a_list_of_names_points_at_dns():
    with pytest.raises(TargetError, match="dns:///name:port"):
        channel_target("tfs-0:8500,tfs-1:8500")


def test_a_dns_target_is_every_address_the_name_resolves_to_now():
    def resolve(host, port, type):  # noqa: A002 - getaddrinfo's keyword
        assert (host, port, type) == ("tfserving-headless", 8500, socket.SOCK_STREAM)
        return [
            (socket.AF_INET, type, 6, "", ("10.1.0.4", port)),
            (socket.AF_INET, type, 6, "", ("10.1.0.7", port)),
            (socket.AF_INET, type, 6, "", ("10.1.0.4", port)),
            (socket.AF_INET6, type, 6, "", ("fd00::9", port, 0, 0)),
        ]

    assert backend_addresses("dns:///tfserving-headless:8500", resolve) == (
        "10.1.0.4:8500",
        "10.1.0.7:8500",
        "[fd00::9]:8500",
    )


def test_target_for_is_the_list_form():
    assert target_for(["127.0.0.1:8500", "127.0.0.1:8510"]) == "127.0.0.1:8500,127.0.0.1:8510"
    assert target_for(["127.0.0.1:8500"]) == "127.0.0.1:8500"


def test_gateway_takes_a_list_of_model_servers_as_an_ipv4_target():
    config = GatewayConfig.from_env({"TF_SERVING_GRPC_TARGET": "127.0.0.1:8500,127.0.0.1:8510"})
    assert config.grpc_target == "ipv4:127.0.0.1:8500,127.0.0.1:8510"


def test_gateway_refuses_a_list_of_names_at_startup():
    with pytest.raises(ValueError, match="TF_SERVING_GRPC_TARGET"):
        GatewayConfig.from_env({"TF_SERVING_GRPC_TARGET": "a:8500,b:8500"})
