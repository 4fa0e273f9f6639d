"""Many processes starting at once on one database: `vidmorph serve` processes on a brand-new
PostgreSQL all come up (the migration and the default user, token and account are made once),
and every process of the fleet signs file URLs with the same key, made once in the database."""

from __future__ import annotations

import functools
import hashlib
import hmac
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, text

from tests.harness import free_port, fresh_postgres_url, start_server
from tests.services import Proc, vidmorph_env, wait_healthy
from vidmorph.config import Settings
from vidmorph.container import build_context, signing_key
from vidmorph.service.accounts import create_token, ensure_default_setup
from vidmorph.service.context import AppContext
from vidmorph.storage.local import LocalStorage
from vidmorph.store.db import Database
from vidmorph.store.secrets import URL_SIGNING_KEY, SecretStore
from vidmorph.store.tables import accounts, shared_secrets, tokens, users

TOKEN = "user:1-fleetstarttoken000000000000"
ROUNDS = 5
PROCESSES = 3


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(0..count-1)` in `count` threads released together; results in index order,
    or the exception a thread raised in its place."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:  # reported by the caller, not lost in the thread
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racing thread never finished"
    return results


def raised(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


def count_rows(db: Database, table: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def close_all(contexts: list[Any]) -> None:
    for ctx in contexts:
        if isinstance(ctx, AppContext):
            ctx.db.close()


def test_serve_processes_started_together_on_a_fresh_postgres_all_come_up(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """Round after round, three `vidmorph serve` started at the same moment on a brand-new
    database: each migrates or waits for the one that does, and the fixed token works on
    every one of them (before the migration lock and ON CONFLICT inserts, 9 rounds in 10
    lost a process)."""
    for round_ in range(ROUNDS):
        with fresh_postgres_url() as url:
            ports = [free_port() for _ in range(PROCESSES)]
            procs = [
                spawn(
                    "serve",
                    database_url=url,
                    port=port,
                    data_dir=tmp_path / f"round{round_}" / f"node{index}",
                    api_token=TOKEN,
                    workers=0,
                    moderation_classifier="false",
                )
                for index, port in enumerate(ports)
            ]
            try:
                for port, proc in zip(ports, procs, strict=True):
                    wait_healthy(f"http://127.0.0.1:{port}", proc)
                for port, proc in zip(ports, procs, strict=True):
                    api = f"http://127.0.0.1:{port}/v1/runwayml"
                    good = httpx.get(
                        f"{api}/accounts", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
                    )
                    assert good.status_code == 200, (round_, good.text, proc.output()[-3000:])
                    assert list(good.json()) == ["default@vidmorph.local"]
                    bad = httpx.get(
                        f"{api}/accounts",
                        headers={"Authorization": "Bearer user:1-not-the-token"},
                        timeout=10,
                    )
                    assert bad.status_code == 401
                db = Database(url)
                try:
                    assert count_rows(db, users) == 1
                    assert count_rows(db, accounts) == 1
                    assert count_rows(db, tokens) == 1
                finally:
                    db.close()
            finally:
                for proc in procs:
                    proc.stop()


@pytest.mark.parametrize("fixed_token", [True, False], ids=["fixed-token", "made-token"])
def test_contexts_built_at_once_on_a_fresh_database_make_one_default_setup(
    make_settings: Callable[..., Settings], tmp_path: Path, database_url: str, fixed_token: bool
) -> None:
    """What each `serve` does before it listens (migrate, signing key, default user, token,
    account), in six threads at once on one new database, each with a data directory of its
    own."""
    count = 6

    def start(index: int) -> tuple[AppContext, str | None, str]:
        settings = make_settings(
            database_url=database_url,
            data_dir=tmp_path / f"node{index}",
            api_token=TOKEN if fixed_token else "",
        )
        ctx = build_context(settings)
        user, token = ensure_default_setup(ctx)
        return ctx, token, user.webhook_secret

    results = race(count, start)
    contexts = [r[0] for r in results if isinstance(r, tuple)]
    try:
        assert raised(results) == []
        db = contexts[0].db
        assert count_rows(db, users) == 1
        assert count_rows(db, accounts) == 1
        # Every process was told the same user, with the secret that was stored.
        stored = contexts[0].users.get(1)
        assert stored is not None
        assert {secret for _, _, secret in results} == {stored.webhook_secret}
        made = [token for _, token, _ in results if token is not None]
        if fixed_token:
            assert made == [TOKEN] * count
            assert count_rows(db, tokens) == 1
        else:
            assert made, "no start reported the default user's token"
        # ... and signs file URLs with the one key the database holds.
        key = SecretStore(db).get_or_create(URL_SIGNING_KEY)
        assert {local(ctx).sign("k", 1) for ctx in contexts} == {hmac_hex(key, "k", 1)}
        for ctx in contexts:
            assert all(ctx.users.verify_token(1, token) for token in made)
            assert not ctx.users.verify_token(1, "user:1-not-the-token")
            assert ctx.accounts.all_of(1)[0].email == "default@vidmorph.local"
    finally:
        close_all(contexts)


def test_new_users_made_at_once_are_each_their_own(
    make_settings: Callable[..., Settings], tmp_path: Path, database_url: str
) -> None:
    """`vidmorph token create` on several machines at once: every caller gets a new user of its
    own (a token for another tenant's user would be a leak), each with its default account."""
    count = 6
    first = build_context(make_settings(database_url=database_url, data_dir=tmp_path / "first"))
    contexts = [
        build_context(make_settings(database_url=database_url, data_dir=tmp_path / f"n{index}"))
        for index in range(count)
    ]
    try:
        ensure_default_setup(first)
        results = race(count, lambda index: create_token(contexts[index]))
        assert raised(results) == []
        ids = sorted(user.id for user, _ in results)
        assert ids == list(range(2, 2 + count)), ids
        for user, token in results:
            assert first.users.verify_token(user.id, token)
            others = [u.id for u, _ in results if u.id != user.id]
            assert not any(first.users.verify_token(other, token) for other in others)
            stored = first.users.get(user.id)
            assert stored is not None and stored.webhook_secret == user.webhook_secret
            assert len(first.accounts.all_of(user.id)) == 1
    finally:
        close_all([first, *contexts])


def ask(stores: list[SecretStore], name: str, index: int) -> bytes:
    return stores[index].get_or_create(name)


def test_racing_threads_all_get_the_same_signing_key(database_url: str) -> None:
    """Sixteen connections ask for the key of a database that has none yet: one candidate wins
    and every caller gets its 32 bytes, never an empty or half-made key."""
    setup = Database(database_url)
    setup.migrate()
    stores = [SecretStore(Database(database_url)) for _ in range(16)]
    try:
        for name in ("first-key", "second-key", "third-key"):
            results = race(len(stores), functools.partial(ask, stores, name))
            assert raised(results) == []
            assert len(set(results)) == 1, name
            assert len(results[0]) == 32
        with setup.read() as conn:
            rows = conn.execute(select(shared_secrets.c.name)).scalars().all()
        assert sorted(rows) == ["first-key", "second-key", "third-key"]
    finally:
        for store in stores:
            store.db.close()
        setup.close()


#: a child that connects, says "ready", then asks for each key named on stdin at the word go
_KEY_CHILD = """
import sys
from vidmorph.store.db import Database
from vidmorph.store.secrets import SecretStore
store = SecretStore(Database(sys.argv[1]))
with store.db.read() as conn:
    conn.exec_driver_sql("SELECT 1")
print("ready", flush=True)
for line in sys.stdin:
    print(store.get_or_create(line.strip()).hex(), flush=True)
"""


@pytest.fixture
def key_children(database_url: str) -> Iterator[list[subprocess.Popen[str]]]:
    setup = Database(database_url)
    setup.migrate()
    setup.close()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _KEY_CHILD, database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=vidmorph_env(),
        )
        for _ in range(6)
    ]
    try:
        yield children
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)


def test_racing_processes_all_get_the_same_signing_key(
    key_children: list[subprocess.Popen[str]],
) -> None:
    """Six processes, connected and waiting, are told the same new key name at once, round
    after round: all of them read the same 32 bytes."""
    for child in key_children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for round_ in range(5):
        for child in key_children:
            assert child.stdin is not None
            child.stdin.write(f"key-{round_}\n")
        for child in key_children:
            assert child.stdin is not None
            child.stdin.flush()
        keys = {bytes.fromhex(child.stdout.readline().strip()) for child in key_children}  # type: ignore[union-attr]
        assert len(keys) == 1, round_
        assert len(next(iter(keys))) == 32


def signed(url: str) -> tuple[str, int, str]:
    """(key, expires, sig) of a file URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    key = unquote(parts.path.split("/v1/runwayml/files/", 1)[1])
    return key, int(query["expires"][0]), query["sig"][0]


def local(ctx: AppContext) -> LocalStorage:
    assert isinstance(ctx.storage, LocalStorage)
    return ctx.storage


def test_two_api_servers_on_one_database_accept_each_others_file_urls(
    make_settings: Callable[..., Settings], tmp_path: Path, postgres_url: str
) -> None:
    """An asset's link made by one API server opens on another (load balancers send the
    download anywhere); a forged signature opens on neither."""
    a_settings = make_settings(database_url=postgres_url, data_dir=tmp_path / "a")
    b_settings = make_settings(database_url=postgres_url, data_dir=tmp_path / "b")
    with start_server(a_settings) as a, start_server(b_settings) as b:
        asset = a.upload_video(tmp_path, seconds=1)
        key, expires, sig = signed(asset["url"])
        assert local(b.ctx).verify(key, expires, sig)
        # The same file on b's disk (a shared volume would do this), fetched through b.
        source = local(a.ctx).local_path(key)
        copy = tmp_path / "copy"
        copy.write_bytes(source.read_bytes())
        local(b.ctx).put(key, copy)
        on_b = asset["url"].replace(a.base_url, b.base_url)
        resp = httpx.get(on_b, timeout=30)
        assert resp.status_code == 200 and resp.content == source.read_bytes()
        forged = on_b.replace(f"sig={sig}", f"sig={'0' * len(sig)}")
        assert httpx.get(forged, timeout=30).status_code == 404
        # And the other way round: b's links are a's too.
        assert local(a.ctx).verify(*signed(local(b.ctx).url(key, 60)))
        stored = SecretStore(a.ctx.db).get_or_create(URL_SIGNING_KEY)
        assert local(a.ctx).sign(key, expires) == hmac_hex(stored, key, expires)


def hmac_hex(key: bytes, blob_key: str, expires: int) -> str:
    return hmac.new(key, f"{blob_key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def test_a_legacy_key_file_seeds_the_shared_key(
    make_settings: Callable[..., Settings], tmp_path: Path, postgres_url: str
) -> None:
    """Links handed out by a version that kept the key in data_dir/url-signing.key keep
    working: the first process to start seeds the database with that file, and every other
    process, whatever its own data directory holds, uses the database's key."""
    legacy = bytes(range(40))
    first_dir, other_dir = tmp_path / "first", tmp_path / "other"
    first_dir.mkdir()
    other_dir.mkdir()
    (first_dir / "url-signing.key").write_bytes(legacy)
    (other_dir / "url-signing.key").write_bytes(b"x" * 48)  # another node's stale file
    db = Database(postgres_url)
    db.migrate()
    try:
        first = make_settings(database_url=postgres_url, data_dir=first_dir)
        other = make_settings(database_url=postgres_url, data_dir=other_dir)
        assert signing_key(first, db) == legacy
        assert signing_key(other, db) == legacy
        assert signing_key(make_settings(data_dir=tmp_path / "none"), db) == legacy
    finally:
        db.close()


@pytest.mark.parametrize("content", [b"", b"short"], ids=["empty", "short"])
def test_a_legacy_key_file_too_short_to_be_a_key_is_not_used(
    make_settings: Callable[..., Settings], tmp_path: Path, database_url: str, content: bytes
) -> None:
    """The 0-byte file an interrupted write left (the old failure) must not become the key."""
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "url-signing.key").write_bytes(content)
    db = Database(database_url)
    db.migrate()
    try:
        key = signing_key(make_settings(database_url=database_url, data_dir=tmp_path / "node"), db)
        assert len(key) == 32 and key != content
        assert SecretStore(db).get_or_create(URL_SIGNING_KEY) == key
    finally:
        db.close()


def test_the_signing_key_setting_is_used_on_every_process(
    make_settings: Callable[..., Settings], tmp_path: Path, postgres_url: str
) -> None:
    """VIDMORPH_URL_SIGNING_KEY given to each process: links are signed with it (so a fleet
    that shares no database-kept key still agrees), whatever the database holds."""
    setting = "k" * 40
    db = Database(postgres_url)
    db.migrate()
    SecretStore(db).get_or_create(URL_SIGNING_KEY)  # a key in the database that must lose
    db.close()
    contexts = [
        build_context(
            make_settings(
                database_url=postgres_url, data_dir=tmp_path / f"n{i}", url_signing_key=setting
            )
        )
        for i in range(2)
    ]
    try:
        url = contexts[0].storage.url("assets/x/video.mp4", 60)
        key, expires, sig = signed(url)
        assert sig == hmac_hex(setting.encode(), key, expires)
        assert local(contexts[1]).verify(key, expires, sig)
    finally:
        close_all(contexts)


def test_a_short_signing_key_setting_is_refused(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        make_settings(url_signing_key="k" * 31)
    monkeypatch.setenv("VIDMORPH_URL_SIGNING_KEY", "too-short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings()
    assert make_settings(url_signing_key="k" * 32).url_signing_key == "k" * 32


def test_a_fixed_api_token_must_be_user_ones_and_long_enough(
    make_settings: Callable[..., Settings],
) -> None:
    for bad in ("user:1-x", "user:1-" + "a" * 23, "user:2-" + "a" * 30, "a" * 40):
        with pytest.raises(ValidationError, match="at least 24 random characters"):
            make_settings(api_token=bad)
    assert make_settings(api_token="user:1-" + "a" * 24).api_token == "user:1-" + "a" * 24


def test_the_migration_is_at_head_once_after_racing_starts(database_url: str) -> None:
    """Eight connections migrate one new database at once: none fails, and the schema is
    there once (one alembic_version row)."""
    databases = [Database(database_url) for _ in range(8)]
    try:
        results = race(len(databases), lambda index: databases[index].migrate())
        assert raised(results) == []
        with databases[0].read() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        for db in databases:
            db.close()


def write_one_row(databases: list[Database], index: int) -> None:
    with databases[index].write() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS seen (n INTEGER)"))
        conn.execute(text("INSERT INTO seen VALUES (:n)"), {"n": index})


def test_connections_opening_a_brand_new_sqlite_file_at_once_all_get_in(tmp_path: Path) -> None:
    """Twelve connections to a SQLite file nobody opened yet, round after round: each gets its
    write through (before, a round in twenty or so lost a connection to "database is locked"
    while they raced to switch the new file to WAL)."""
    for round_ in range(200):
        url = f"sqlite:///{tmp_path / f'round{round_}.db'}"
        databases = [Database(url) for _ in range(12)]
        try:
            results = race(len(databases), functools.partial(write_one_row, databases))
            assert raised(results) == [], round_
            with databases[0].read() as conn:
                assert conn.execute(text("SELECT count(*) FROM seen")).scalar_one() == 12
                assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        finally:
            for db in databases:
                db.close()
