"""Store behaviour every feedback database must show; SQLite (unit) and PostgreSQL (integration) run it."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from contract.feedback import HELD_OUT_SHARE, STORED_INPUT_BYTES, input_from_bytes, is_held_out
from gateway.feedback.schema import VERSION_TABLE, feedback, metadata, trained_on
from gateway.feedback.store import Correction, FeedbackStore

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "gateway" / "feedback" / "alembic.ini"


def cli_config() -> Config:
    """The config `alembic -c gateway/feedback/alembic.ini` builds; logging stays pytest's."""
    return Config(str(ALEMBIC_INI), attributes={"configure_logger": False})


def correction(seed: int, label: int = 7, version: int | None = 2) -> Correction:
    """A correction whose model input is distinct per seed (the held-out split hashes it)."""
    image = np.random.default_rng(seed).random((28, 28), dtype=np.float32)
    return Correction(
        upload=b"\x89PNG fake " + seed.to_bytes(4, "big"),
        model_input=image,
        label=label,
        predicted=(label + 1) % 10,
        version=version,
        preprocessing="enhanced",
    )


def count_rows(store: FeedbackStore) -> int:
    with store.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(feedback)).scalar_one()


def post_concurrently(post, threads: int, per_thread: int) -> tuple[int, float]:
    """Call post(thread, i) threads x per_thread times from `threads` threads; (successes, seconds)."""
    ok = [0] * threads
    errors: list[BaseException] = []
    start_line = threading.Barrier(threads)

    def worker(thread: int):
        start_line.wait()
        for i in range(per_thread):
            try:
                post(thread, i)
                ok[thread] += 1
            except BaseException as error:  # reported below, never swallowed
                errors.append(error)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not errors, errors[:3]
    return sum(ok), time.perf_counter() - start


class StoreContract:
    """Subclasses provide a `store` fixture: a FeedbackStore on an empty database."""

    def test_migrations_create_the_schema_the_store_queries(self, store):
        store.ensure_schema()
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            assert context.get_current_revision() is not None
            differences = compare_metadata(context, metadata)
        assert differences == []

    def test_upgrading_twice_changes_nothing(self, store):
        store.ensure_schema()
        store._ready = False  # a second process starting against the migrated database
        store.ensure_schema()
        assert store.stats()["total"] == 0

    def test_added_record_keeps_upload_and_exact_model_input(self, store):
        sent = correction(1)
        record = store.add(sent)
        assert set(record) == {
            "id",
            "created_at",
            "label",
            "predicted",
            "version",
            "preprocessing",
            "held_out",
        }
        assert record["created_at"].endswith("Z")
        with store.engine.connect() as connection:
            row = connection.execute(sa.select(feedback).where(feedback.c.id == record["id"])).one()
        assert row.upload == sent.upload and len(row.model_input) == STORED_INPUT_BYTES
        np.testing.assert_array_equal(input_from_bytes(row.model_input), sent.model_input)
        assert (row.label, row.predicted, row.version, row.preprocessing) == (7, 8, 2, "enhanced")
        assert row.held_out == is_held_out(row.model_input) == record["held_out"]

    def test_stats_count_by_label_version_and_unknown_version(self, store):
        for seed, (label, version) in enumerate([(7, 2), (7, 3), (1, 2), (0, None), (0, None)]):
            store.add(correction(seed, label=label, version=version))
        stats = store.stats()
        assert stats["total"] == 5
        assert stats["by_label"] == {str(d): {7: 2, 1: 1, 0: 2}.get(d, 0) for d in range(10)}
        assert stats["by_version"] == {"2": 2, "3": 1} and stats["version_unknown"] == 2
        assert stats["held_out_share"] == HELD_OUT_SHARE and stats["trained_on"] == {}

    def test_trained_on_counts_per_model_version(self, store):
        ids = [store.add(correction(seed))["id"] for seed in range(3)]
        store.record_training(4, ids)
        store.record_training(5, ids[:1])
        store.record_training(6, [])
        assert store.stats()["trained_on"] == {"4": 3, "5": 1}
        store.record_training(5, ids[1:])  # version 5 exported anew: its list is replaced, not merged
        assert store.stats()["trained_on"] == {"4": 3, "5": 2}
        with store.engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(trained_on)).scalar_one() == 5

    def test_corrections_read_back_exactly_in_id_order(self, store):
        added = [
            store.add(correction(seed, label=seed % 10, version=None if seed == 2 else 3))
            for seed in range(5)
        ]
        read = store.corrections()
        assert [c.id for c in read] == [record["id"] for record in added]
        for stored, record, seed in zip(read, added, range(5), strict=True):
            assert (stored.label, stored.predicted, stored.version) == (
                record["label"],
                record["predicted"],
                record["version"],
            )
            assert stored.held_out == record["held_out"]
            np.testing.assert_array_equal(stored.model_input, correction(seed).model_input)

    def test_held_out_share_is_near_the_share_and_matches_the_rule(self, store):
        records = [store.add(correction(seed)) for seed in range(300)]
        held = sum(record["held_out"] for record in records)
        # Binomial(300, 0.2): sd ~6.9; 5 sd either side.
        assert abs(held - 300 * HELD_OUT_SHARE) < 35
        assert store.stats()["held_out"] == held

    def test_failed_insert_leaves_nothing(self, store):
        store.add(correction(1))
        bad = correction(2, label=12)  # past validation: the database's own check refuses it
        with pytest.raises(sa.exc.IntegrityError):
            store.add(bad)
        assert count_rows(store) == 1 and store.stats()["total"] == 1

    def test_concurrent_adds_all_stored(self, store):
        threads, per_thread = 8, 25
        stored, seconds = post_concurrently(
            lambda t, i: store.add(correction(1000 * t + i, label=i % 10)), threads, per_thread
        )
        assert stored == threads * per_thread == count_rows(store) == store.stats()["total"]
        print(
            f"\n{store.engine.dialect.name}: {stored} adds from {threads} threads, {stored / seconds:.0f}/s"
        )
