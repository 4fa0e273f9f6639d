"""The store's contract fixtures: each test runs on SQLite (a file) and PostgreSQL (a fresh
database), with user 1 owning the account EMAIL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contracts.tasks import EMAIL
from vidmorph.store.accounts import AccountStore
from vidmorph.store.db import Database
from vidmorph.store.tasks import TaskStore
from vidmorph.store.users import UserStore


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def tasks(db: Database) -> TaskStore:
    UserStore(db).create("whsec_dGVzdA==", 1)
    UserStore(db).create("whsec_dGVzdA==", 2)
    AccountStore(db).upsert(1, EMAIL, max_jobs=3, plan="standard", num_plan_credits=1000)
    return TaskStore(db)
