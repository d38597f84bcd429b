"""Where the model servers are: one gRPC target string, read the same way by the gateway and the lifecycle.

TF_SERVING_GRPC_TARGET takes one of:
- `host:port`: one model server (gRPC resolves the name);
- `a:p,b:q,...`: several model servers by IPv4 address (gRPC's channel target is then `ipv4:a:p,b:q`);
- `ipv4:a:p,b:q` or `ipv6:[a]:p,[b]:q`: gRPC's own address-list URIs, as they are;
- `dns:///name:port` (or `dns://server/name:port`): every address the name resolves to, e.g. a Kubernetes
  headless Service; per-server questions resolve the name again each time;
- `unix:/path` (or `unix:///path`): one model server on a Unix socket.
"""

import ipaddress
import socket
from collections.abc import Callable

LIST_SCHEMES = ("ipv4:", "ipv6:")
DNS_SCHEME = "dns:"
UNIX_SCHEMES = ("unix:", "unix-abstract:")


class TargetError(ValueError):
    """A gRPC target this stack cannot use; the message says which form would do."""


def channel_target(spec: str) -> str:
    """The gRPC channel target for `spec`: a bare comma-separated list becomes an `ipv4:` URI."""
    spec = spec.strip()
    if not spec:
        raise TargetError("the gRPC target is empty")
    if "," in spec and not spec.startswith((*LIST_SCHEMES, DNS_SCHEME, *UNIX_SCHEMES)):
        spec = "ipv4:" + spec
    if spec.startswith(LIST_SCHEMES):
        _listed(spec)  # validates
    elif spec.startswith(UNIX_SCHEMES) and len(spec.split(":", 1)[1].lstrip("/")) == 0:
        raise TargetError(f"{spec!r} needs a socket path, e.g. unix:/run/grpc.sock")
    elif spec.startswith(DNS_SCHEME):
        _dns_host_port(spec)  # validates
    return spec


def listed_addresses(spec: str) -> tuple[str, ...] | None:
    """Each server's own address, or None for a `dns:` target (resolved when asked: backend_addresses)."""
    target = channel_target(spec)
    if target.startswith(DNS_SCHEME):
        return None
    if target.startswith(LIST_SCHEMES):
        return _listed(target)
    return (target,)


def backend_addresses(spec: str, resolve: Callable[..., list] = socket.getaddrinfo) -> tuple[str, ...]:
    """Each server's own gRPC target now: the list as given, or what a `dns:` name resolves to.

    OSError when the name does not resolve.
    """
    listed = listed_addresses(spec)
    if listed is not None:
        return listed
    host, port = _dns_host_port(channel_target(spec))
    found: dict[str, None] = {}
    for family, _, _, _, sockaddr in resolve(host, port, type=socket.SOCK_STREAM):
        address = sockaddr[0]
        found[f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"] = None
    return tuple(found)


def target_for(addresses: list[str] | tuple[str, ...]) -> str:
    """The TF_SERVING_GRPC_TARGET value naming these `host:port` addresses (one, or an IPv4 list)."""
    if not addresses:
        raise TargetError("no model server addresses")
    return ",".join(addresses)


def _listed(target: str) -> tuple[str, ...]:
    scheme, _, rest = target.partition(":")
    addresses = tuple(part.strip() for part in rest.split(",") if part.strip())
    if not addresses:
        raise TargetError(f"{target!r} lists no address")
    for address in addresses:
        host, sep, port = address.rpartition(":")
        try:
            if scheme == "ipv4":
                ipaddress.IPv4Address(host)
            else:
                if not (host.startswith("[") and host.endswith("]")):
                    raise ValueError(host)
                ipaddress.IPv6Address(host[1:-1])
            valid_port = sep and 0 < int(port) < 65536
        except ValueError:
            valid_port = False
        if not valid_port:
            raise TargetError(
                f"{address!r} in {target!r} is not an {scheme} address:port; a list of servers names them "
                "by address (e.g. 127.0.0.1:8500,127.0.0.1:8510); for names use dns:///name:port"
            )
    return addresses


def _dns_host_port(target: str) -> tuple[str, int]:
    rest = target[len(DNS_SCHEME) :]
    if rest.startswith("//"):
        rest = rest[2:].partition("/")[2]  # drop the DNS server authority
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise TargetError(f"{target!r} needs a port, e.g. dns:///tfserving-headless:8500")
    return host.strip("[]"), int(port)
