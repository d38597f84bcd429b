"""A throwaway PostgreSQL server (Debian's binaries) on a unix socket in a temporary directory."""

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
START_TIMEOUT_S = 30


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = [path for path in PG_BIN_DIRS if (path / "initdb").exists()]
    return found[0] if found else None


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if pg_bin() is None:
        return "PostgreSQL server binaries are not installed (Debian package postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


@contextmanager
def postgres_server(base_dir: Path) -> Iterator[str]:
    """Start a server listening only on a unix socket under `base_dir`; yield its SQLAlchemy URL.

    PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user, in a
    directory it owns.
    """
    bin_dir = pg_bin()
    as_user: list[str] = []
    base_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        owner = pwd.getpwnam("postgres")
        os.chown(base_dir, owner.pw_uid, owner.pw_gid)
        # The socket path's parents must be searchable by the postgres user (pytest's tmp is 0700).
        for parent in base_dir.parents:
            if parent == Path("/"):
                break
            if not os.stat(parent).st_mode & 0o001:
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
    data, socket_dir, log = base_dir / "data", base_dir, base_dir / "server.log"
    run = [*as_user]
    subprocess.run(
        [*run, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses='' -c unix_socket_directories={socket_dir} -c fsync=off"
    subprocess.run(
        [*run, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t"]
        + [str(START_TIMEOUT_S), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={socket_dir}"
    finally:
        subprocess.run(
            [*run, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base_dir, ignore_errors=True)
