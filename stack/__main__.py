"""`make up/down/status/logs`: the stack under Docker Compose when an engine answers, else local processes."""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from stack import local
from stack.compose import Compose, ComposeError
from stack.services import StackSettings, forget_model_servers, model_server_places
from stack.state import ensure_state


def docker_engine_available() -> bool:
    """True when a Docker engine answers (the CLI alone is not enough)."""
    try:
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_mode(settings: StackSettings) -> str:
    """STACK_MODE=docker|local, else the mode of a running stack, else docker if an engine answers."""
    requested = os.environ.get("STACK_MODE", "auto")
    if requested in ("docker", "local"):
        return requested
    recorded = Path(settings.run_dir) / "mode"
    if recorded.is_file():
        return recorded.read_text().strip()
    return "docker" if docker_engine_available() else "local"


def print_urls(settings: StackSettings, mode: str = "local") -> None:
    """Where to point a browser or curl."""
    print(f"  UI        http://127.0.0.1:{settings.ui_port}")
    print(f"  gateway   http://127.0.0.1:{settings.gateway_port}  (API docs: /docs)")
    if mode == "local":
        for place in model_server_places(settings):
            print(f"  TF Serving gRPC {place.grpc_address}, REST {place.rest_url}  ({place.name})")
    else:
        print(f"  TF Serving gRPC 127.0.0.1:{settings.grpc_port}, REST http://127.0.0.1:{settings.rest_port}")
    print(f"  live state {Path(settings.state_dir).resolve()}")


def compose_env(settings: StackSettings) -> dict[str, str]:
    """The environment Compose interpolates: the caller's, the host user for `train`, absolute mounts."""
    env = {**os.environ, "HOST_UID": str(os.getuid()), "HOST_GID": str(os.getgid())}
    # Compose takes a bind source without ./ or / for a named volume; the state dir must stay a bind mount.
    env["STATE_DIR"] = str(Path(settings.state_dir).resolve())
    if env.get("MODELS_DIR"):
        env["MODELS_DIR"] = str(Path(env["MODELS_DIR"]).resolve())
    return env


def cmd_up(settings: StackSettings, mode: str) -> int:
    run_dir = Path(settings.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Both modes serve the live config in the state directory, seeded from serving/models.config once.
    ensure_state(Path(settings.state_dir))
    if mode == "docker":
        if os.environ.get("MODEL_SERVERS", "1") != "1":
            print("make up: error: MODEL_SERVERS is for local mode (STACK_MODE=local)", file=sys.stderr)
            return 1
        forget_model_servers(run_dir)  # only a local stack's servers are recorded
        try:
            Compose(compose_env(settings)).up()
        except ComposeError as exc:
            print(f"make up: error: {exc}", file=sys.stderr)
            return 1
    else:
        try:
            started_now = local.up(settings)
        except local.StackAlreadyRunning as exc:
            print(f"make up: {exc}")
            return 0
        except local.StackError as exc:
            print(f"make up: error: {exc}", file=sys.stderr)
            return 1
        if started_now and len(started_now) < len(local.local_services(settings)):
            print("started again: " + ", ".join(service.name for service in started_now))
    (run_dir / "mode").write_text(mode)
    print(f"stack up ({mode} mode) and healthy in {time.monotonic() - started:.1f} s:")
    print_urls(settings, mode)
    return 0


def cmd_down(settings: StackSettings, mode: str) -> int:
    if mode == "docker":
        try:
            Compose(compose_env(settings)).down()
        except ComposeError as exc:
            print(f"make down: error: {exc}", file=sys.stderr)
            return 1
    else:
        stopped = local.down(settings)
        print("stopped " + (", ".join(stopped) if stopped else "nothing (the stack was not running)"))
    (Path(settings.run_dir) / "mode").unlink(missing_ok=True)
    return 0


def cmd_status(settings: StackSettings, mode: str) -> int:
    if mode == "docker":
        try:
            states = Compose(compose_env(settings)).health()
        except ComposeError as exc:
            print(f"make status: error: {exc}", file=sys.stderr)
            return 1
        for name, state in states.items():
            print(f"  {name:<13} {state}")
        return 0 if all(state == "healthy" for state in states.values()) else 3
    rows = local.status(settings)
    for name, pid, healthy, url in rows:
        state = "healthy" if healthy else ("running, not ready" if pid else "stopped")
        print(f"  {name:<13} {state:<19} pid {pid or '-':<8} {url}")
    return 0 if all(healthy for _, _, healthy, _ in rows) else 3


def cmd_logs(settings: StackSettings, mode: str, follow: bool) -> int:
    if mode == "docker":
        try:
            compose = Compose(compose_env(settings))
        except ComposeError as exc:
            print(f"make logs: error: {exc}", file=sys.stderr)
            return 1
        try:
            return compose.run("logs", *(["-f"] if follow else ["--tail", "50"])).returncode
        except KeyboardInterrupt:
            return 0
    logs = sorted((Path(settings.run_dir) / "logs").glob("*.log"))
    if not logs:
        print("no logs yet: `make up` first")
        return 0
    command = ["tail", "-n", "50", *(["-F"] if follow else []), *map(str, logs)]
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 0


def cmd_lifecycle(args) -> int:
    """promote, canary, rollback and retire: exit 0 only once the model server confirms the change."""
    from stack.lifecycle import Lifecycle, LifecycleError, Settings

    try:
        lifecycle = Lifecycle(Settings.from_env())
        if args.command == "promote":
            lifecycle.promote(args.version, force=args.force)
        elif args.command == "rollback":
            print(f"rolled back: stable is version {lifecycle.rollback()}")
        elif args.command == "retire":
            lifecycle.retire(args.version, switch_to_specific=args.switch_to_specific)
        else:
            lifecycle.canary(args.version, args.percent)
    except LifecycleError as exc:
        print(f"make {args.command}: error: {exc}; nothing was changed", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the state directory is not writable, or not run from the repo root
        print(f"make {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [
        ("up", "start the stack"),
        ("down", "stop what `up` started"),
        ("status", "health of each service"),
    ]:
        commands.add_parser(name, help=text)
    logs = commands.add_parser("logs", help="the services' recent logs")
    logs.add_argument("-f", "--follow", action="store_true", help="keep following")
    promote = commands.add_parser("promote", help="move the stable label to VERSION (model-card gated)")
    promote.add_argument("version", type=int)
    promote.add_argument("--force", action="store_true", help="skip the model-card promotion gate")
    commands.add_parser("rollback", help="move the stable label back to the previous stable version")
    canary = commands.add_parser("canary", help="send PERCENT of default traffic to VERSION (0 ends it)")
    canary.add_argument("version", type=int)
    canary.add_argument("percent", type=float)
    retire = commands.add_parser("retire", help="stop loading unlabelled VERSION (its directory stays)")
    retire.add_argument("version", type=int)
    retire.add_argument(
        "--switch-to-specific",
        action="store_true",
        help="with an `all` or `latest` policy, switch it to `specific` (the versions loaded now) first",
    )
    args = parser.parse_args(argv)
    if args.command in ("promote", "rollback", "canary", "retire"):
        return cmd_lifecycle(args)
    try:
        settings = StackSettings.from_env()
    except ValueError as exc:
        print(f"make {args.command}: error: {exc}", file=sys.stderr)
        return 2
    mode = choose_mode(settings)
    if args.command == "up":
        return cmd_up(settings, mode)
    if args.command == "down":
        return cmd_down(settings, mode)
    if args.command == "status":
        return cmd_status(settings, mode)
    return cmd_logs(settings, mode, args.follow)


if __name__ == "__main__":
    sys.exit(main())
