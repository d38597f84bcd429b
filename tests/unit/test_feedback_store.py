"""The feedback store on a SQLite file: schema from the migrations, records, stats, the held-out rule."""

import numpy as np
import pytest

from contract.feedback import HELD_OUT_SHARE, input_bytes, is_held_out
from gateway.feedback.store import FeedbackStore, create_feedback_engine, database_url
from tests.support.feedback_store import StoreContract


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        engine = create_feedback_engine(f"sqlite:///{tmp_path}/sub/feedback.sqlite3")
        yield FeedbackStore(engine)
        engine.dispose()

    def test_file_created_on_first_use_in_wal_mode(self, store, tmp_path):
        path = tmp_path / "sub" / "feedback.sqlite3"
        assert not path.exists()
        store.stats()
        assert path.exists()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_held_out_rule_is_stable_and_near_the_share():
    rng = np.random.default_rng(0)
    inputs = [input_bytes(rng.random((28, 28))) for _ in range(10_000)]
    held = [is_held_out(data) for data in inputs]
    # Binomial(10000, 0.2): sd 0.4 %; 1.5 % is almost 4 sd.
    assert abs(sum(held) / len(held) - HELD_OUT_SHARE) < 0.015
    assert held == [is_held_out(bytes(data)) for data in inputs]


def test_postgres_urls_use_psycopg3():
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("sqlite:///data/x.sqlite3").drivername == "sqlite"
