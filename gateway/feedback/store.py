"""The feedback store: SQLite (one file, WAL) or PostgreSQL through SQLAlchemy Core, migrated by Alembic."""

import fcntl
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Engine, make_url

from contract.feedback import HELD_OUT_SHARE, input_bytes, input_from_bytes, is_held_out
from contract.mnist import NUM_CLASSES
from gateway.errors import StorageUnavailable
from gateway.feedback.schema import feedback, trained_on

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant key will do: it only has to be the same in every gateway replica migrating one database.
PG_MIGRATION_LOCK_KEY = 0x6D6E6973_74666200  # "mnistfb\0"
# How long a SQLite writer waits for another's lock (pysqlite's busy timeout) before failing.
SQLITE_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StoredCorrection:
    """One stored correction as retraining reads it: the model input the user corrected and its label."""

    id: int
    label: int
    predicted: int | None
    version: int | None
    held_out: bool
    model_input: np.ndarray  # 28x28 float32 in [0, 1]


@dataclass(frozen=True)
class Correction:
    """One correction as the client sent it, with the upload and the model input made from it."""

    upload: bytes
    model_input: np.ndarray
    label: int
    predicted: int | None
    version: int | None
    preprocessing: str


def database_url(url: str) -> URL:
    """The SQLAlchemy URL: `postgresql://` and `postgres://` use psycopg 3, the driver pinned here.

    ValueError, without the URL (it may hold a password), when SQLAlchemy cannot parse it.
    """
    try:
        parsed = make_url(
            url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
        )
    except sa.exc.ArgumentError:
        raise ValueError(
            "the feedback database URL is not one SQLAlchemy can parse "
            "(e.g. sqlite:///data/feedback.db or postgresql://user:password@host/db)"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def shown_url(url: str) -> str:
    """The database URL as logs and model cards may show it: its password hidden."""
    return database_url(url).render_as_string(hide_password=True)


def create_feedback_engine(url: str) -> Engine:
    """An engine for `url`; it connects on first use. SQLite files get WAL and a busy timeout."""
    parsed = database_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _wal(dbapi_connection, _record):
        # WAL lets readers (stats) run beside the one writer; the setting persists in the file.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class FeedbackStore:
    """Adds corrections and counts them; the schema is upgraded to head on first use."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._ready = False
        self._ready_lock = threading.Lock()

    def add(self, correction: Correction) -> dict:
        """Store one correction in one transaction; its record (no image bytes) with `id` and `held_out`."""
        self.ensure_schema()
        model_input = input_bytes(correction.model_input)
        row = {
            "created_at": datetime.now(UTC),
            "label": correction.label,
            "predicted": correction.predicted,
            "version": correction.version,
            "preprocessing": correction.preprocessing,
            "upload": correction.upload,
            "model_input": model_input,
            "held_out": is_held_out(model_input),
        }
        with storage_errors(), self.engine.begin() as connection:
            result = connection.execute(feedback.insert().values(**row))
            record_id = result.inserted_primary_key[0]
        record = {key: value for key, value in row.items() if key not in ("upload", "model_input")}
        record["created_at"] = row["created_at"].isoformat().replace("+00:00", "Z")
        return {"id": record_id, **record}

    def stats(self) -> dict:
        """Counts: total, by label, by served version (unknown apart), held out, trained on per version."""
        self.ensure_schema()
        groups = sa.select(
            feedback.c.label, feedback.c.version, feedback.c.held_out, sa.func.count().label("n")
        ).group_by(feedback.c.label, feedback.c.version, feedback.c.held_out)
        trained = sa.select(trained_on.c.model_version, sa.func.count().label("n")).group_by(
            trained_on.c.model_version
        )
        with storage_errors(), self.engine.connect() as connection:
            rows = connection.execute(groups).all()
            trained_rows = connection.execute(trained).all()
        by_label: Counter = Counter()
        by_version: Counter = Counter()
        held_out = 0
        for label, version, held, count in rows:
            by_label[label] += count
            by_version[version] += count
            held_out += count if held else 0
        total = sum(by_label.values())
        return {
            "total": total,
            "by_label": {str(digit): by_label[digit] for digit in range(NUM_CLASSES)},
            "by_version": {str(v): by_version[v] for v in sorted(v for v in by_version if v is not None)},
            "version_unknown": by_version[None],
            "held_out": held_out,
            "held_out_share": HELD_OUT_SHARE,
            "trained_on": {str(version): count for version, count in sorted(trained_rows)},
        }

    def corrections(self) -> list[StoredCorrection]:
        """Every stored correction in id order, uploads left out (retraining needs the model inputs)."""
        self.ensure_schema()
        columns = [feedback.c[name] for name in ("id", "label", "predicted", "version", "held_out")]
        query = sa.select(*columns, feedback.c.model_input).order_by(feedback.c.id)
        with storage_errors(), self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            StoredCorrection(
                row.id, row.label, row.predicted, row.version, row.held_out, input_from_bytes(row.model_input)
            )
            for row in rows
        ]

    def record_training(self, model_version: int, feedback_ids: list[int]) -> None:
        """Record that `model_version` was trained on exactly these records (the stats' `trained_on`).

        One transaction, replacing what an earlier export of the same number (since deleted) recorded.
        """
        self.ensure_schema()
        rows = [{"model_version": model_version, "feedback_id": record_id} for record_id in feedback_ids]
        with storage_errors(), self.engine.begin() as connection:
            connection.execute(trained_on.delete().where(trained_on.c.model_version == model_version))
            if rows:
                connection.execute(trained_on.insert(), rows)

    def ensure_schema(self) -> None:
        """Upgrade the database to the newest migration once per process, one migrator at a time."""
        if self._ready:
            return
        with self._ready_lock, storage_errors():
            if not self._ready:
                upgrade(self.engine)
                self._ready = True


def upgrade(engine: Engine) -> None:
    """Alembic upgrade to head, serialised across processes and replicas (see migration_connection)."""
    with migration_connection(engine) as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection  # migrations/env.py migrates this connection
        command.upgrade(config, "head")


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that only one migrator at a time holds; the gateway and the CLI use it.

    PostgreSQL: a transaction-scoped advisory lock, so a second migrator waits, then sees head.
    SQLite: an exclusive lock on a file beside the database (its DDL is not transactional in pysqlite).
    """
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        if database in ("", ":memory:"):
            with engine.begin() as connection:  # one connection's private database: nobody to race
                yield connection
            return
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.migrate-lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with engine.begin() as connection:
                    yield connection
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_MIGRATION_LOCK_KEY)))
        yield connection


@contextmanager
def storage_errors():
    """Turn an unreachable or failing database (or a SQLite file that cannot be made) into a 503.

    The transaction has rolled back by then.
    Integrity errors are not caught: fields are validated before the insert, so one is a bug (a 500).
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as error:
        raise StorageUnavailable(
            "the feedback database could not take the request; nothing was stored"
        ) from error
