"""Shared fixtures: the real database and broker, started once per test run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.servers import (
    fresh_database,
    make_shared_tmpdir,
    running_mosquitto,
    running_postgres,
)
from wattwatch.errors import StackError
from wattwatch.settings import Settings
from wattwatch.stack.mosquitto import EmbeddedMosquitto
from wattwatch.stack.postgres import EmbeddedPostgres


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL+TimescaleDB cluster for the whole run, with a migrated template database."""
    try:
        with running_postgres() as server:
            yield server
    except StackError as exc:  # a missing binary fails loudly, never a skip
        pytest.fail(f"cannot start the test database: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedMosquitto]:
    """A Mosquitto broker for the whole run."""
    try:
        with running_mosquitto() as server:
            yield server
    except StackError as exc:
        pytest.fail(f"cannot start the test broker: {exc}", pytrace=False)


@pytest.fixture
def db_url(pg: EmbeddedPostgres) -> str:
    """URL of a fresh, migrated database of this test's own."""
    return fresh_database(pg)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as connection:
        yield connection


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A state folder the postgres and mosquitto users can reach."""
    path = make_shared_tmpdir("wattwatch-test-state-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(db_url: str, broker: EmbeddedMosquitto, state_dir: Path) -> Settings:
    """Settings pointing at this test's database and the run's broker."""
    return Settings(database_url=db_url, mqtt_url=broker.url, state_dir=state_dir)
