"""The leaderboard store, on SQLite and on the real PostgreSQL server: migrations, submission and
duplicates, the claim/lease/fencing rules of the queue, stored files, and a race of 8 submitters
and 3 workers in which every request runs exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from opinbench.leaderboard import store as S
from tests.helpers.leaderboard_stores import url  # noqa: F401 - the store fixture, per backend



@pytest.fixture
def store(url):
    st = S.Store.open(url)
    yield st
    st.engine.dispose()


def fields(model="org/m", **kw):
    identity = {"model": model, "revision": kw.pop("revision", "abc"), "adapter_hash": None, "dtype": "float32",
                "chat_template": True, "leaderboard": "smoke", "leaderboard_version": 1}
    return {"leaderboard": "smoke", "leaderboard_version": 1, "identity": identity, "model": model,
            "revision": identity["revision"], "dtype": "float32", "chat_template": True, **kw}


def test_migrated_schema_matches_the_tables(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from opinbench.leaderboard.tables import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    S.upgrade(store.engine)  # a second upgrade is a no-op


def test_duplicate_refused_naming_the_entry_and_rerun_kept(store):
    first = store.submit(fields())
    with pytest.raises(S.DuplicateEntry, match=f"request {first} \\(org/m, state PENDING\\).*--rerun"):
        store.submit(fields())
    again = store.submit(fields(), rerun=True)
    third = store.submit(fields(), rerun=True)
    rows = store.list()
    assert [r["id"] for r in rows] == [first, again, third]
    assert [r["rerun_of"] for r in rows] == [None, first, first]
    assert store.submit(fields(revision="def")) != first  # another revision is another entry


def test_claim_takes_the_oldest_pending_and_states_move_on(store):
    a = store.submit(fields("org/a", created=1.0))
    b = store.submit(fields("org/b", created=2.0))
    c1 = store.claim("w1")
    assert c1.id == a and c1.attempt == 1 and store.get(a)["state"] == S.RUNNING
    c2 = store.claim("w2")
    assert c2.id == b
    assert store.claim("w3") is None
    assert store.finish(c1, {"scores": {}})
    assert store.fail(c2, "boom", log_tail="Traceback ... boom")
    assert store.get(a)["state"] == S.FINISHED
    failed = store.get(b)
    assert (failed["state"], failed["reason"], failed["log_tail"]) == (S.FAILED, "boom", "Traceback ... boom")
    assert len(store.list(state=S.FAILED)) == 1  # failures stay listed


def test_expired_lease_is_taken_over_and_the_old_worker_is_fenced(store):
    rid = store.submit(fields())
    t0 = time.time()
    dead = store.claim("dead", lease_s=10, now=t0)
    assert store.claim("w2", lease_s=10, now=t0 + 5) is None  # lease still held
    alive = store.claim("w2", lease_s=10, now=t0 + 11)
    assert (alive.id, alive.attempt, alive.worker) == (rid, 2, "w2")
    assert not store.finish(dead, {"scores": {"x": 1}})  # the dead worker's late result is refused
    assert not store.heartbeat(dead)
    assert store.heartbeat(alive)
    assert store.finish(alive, {"scores": {}})
    assert store.get(rid)["state"] == S.FINISHED and store.get(rid)["attempts"] == 2


def test_a_job_whose_workers_keep_dying_fails_with_the_reason(store):
    rid = store.submit(fields())
    t = time.time()
    for i in range(3):
        assert store.claim(f"w{i}", lease_s=1, now=t + 2 * i, max_attempts=3).attempt == i + 1
    assert store.claim("w9", lease_s=1, now=t + 100, max_attempts=3) is None
    row = store.get(rid)
    assert row["state"] == S.FAILED and "lease expired 3 times" in row["reason"] and "w2" in row["reason"]


def test_files_are_stored_by_content_and_exported_as_they_were(store, tmp_path):
    run = tmp_path / "run" / "org__m"
    run.mkdir(parents=True)
    (run / "results_x.json").write_text('{"a": 1}')
    (run / "samples_t_x.jsonl").write_bytes(b'{"doc_id": 0}\n' * 1000)
    a, b = store.submit(fields("org/a")), store.submit(fields("org/b"))
    assert store.finish(store.claim("w1"), {}, folder=tmp_path / "run")
    stored = store.file_list(a)
    assert set(stored) == {"org__m/results_x.json", "org__m/samples_t_x.jsonl"}
    assert store.finish(store.claim("w2"), {}, folder=tmp_path / "run")  # same contents: blobs shared
    out = store.export_files(b, tmp_path / "out")
    assert (out / "org__m/samples_t_x.jsonl").read_bytes() == (run / "samples_t_x.jsonl").read_bytes()
    assert store.file_list(a) == store.file_list(b)


def test_default_url_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(S.URL_ENV, "postgresql://x@y/z")
    assert S.default_url() == "postgresql://x@y/z"
    monkeypatch.delenv(S.URL_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert S.default_url().startswith("sqlite:///") and S.default_url().endswith("opinbench/leaderboard.sqlite")


def test_race_of_8_submitters_and_3_workers_runs_each_request_once(url):
    stores = [S.Store.open(url) for _ in range(2)]  # two handles: as if two machines
    runs: Counter[int] = Counter()
    lock = threading.Lock()
    submitted: list[int] = []
    refused: list[int] = []
    done_submitting = threading.Event()
    errors: list[BaseException] = []

    def submitter(i: int) -> None:
        try:
            st = stores[i % 2]
            for j in range(4):
                rid = st.submit(fields(f"org/m{i}-{j}"))
                with lock:
                    submitted.append(rid)
            # all submitters race to submit the same model: one wins, the others are refused
            try:
                rid = st.submit(fields("org/shared"))
                with lock:
                    submitted.append(rid)
            except S.DuplicateEntry:
                with lock:
                    refused.append(i)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    def worker(k: int) -> None:
        try:
            st = stores[k % 2]
            while True:
                claim = st.claim(f"w{k}", lease_s=60)
                if claim is None:
                    if done_submitting.is_set() and st.claim(f"w{k}", lease_s=60) is None:
                        return
                    time.sleep(0.01)
                    continue
                with lock:
                    runs[claim.id] += 1
                assert st.finish(claim, {"by": k})
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    subs = [threading.Thread(target=submitter, args=(i,)) for i in range(8)]
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in workers + subs:
        t.start()
    for t in subs:
        t.join()
    done_submitting.set()
    for t in workers:
        t.join(timeout=120)
    assert not errors, errors
    assert len(submitted) == 33 == len(set(submitted)) and len(refused) == 7
    rows = stores[0].list()
    assert len(rows) == 33
    assert all(r["state"] == S.FINISHED for r in rows)
    assert runs == Counter({rid: 1 for rid in submitted})
    for st in stores:
        st.engine.dispose()
