"""The stakeholder copy (relay/publish.py): a publish writes only what changed since the generation it
refreshes, never a generation a reader has open, and keeps at most one spare beside what readers hold; a
spare's saved digests spare reading it, and never stand in for bytes they do not describe.
Crashes and kills mid-publish: tests/test_crash_recovery.py."""

import subprocess
import sys

import duckdb
import pytest

from relay import publish

READ = "select count(*), sum(hash(i, payload)) from main.facts"


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("RELAY_WAREHOUSE", str(path))
    monkeypatch.setenv("RELAY_DATA_DIR", str(tmp_path))
    with duckdb.connect(str(path)) as con:  # tens of MB: big beside a small change
        con.execute("create table main.facts as select i, md5(cast(i as varchar)) as payload from range(500000) t(i)")
    return path


def change(warehouse, rows: int, label: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into main.facts select i, ? from range(?, ?) t(i)",
                    [label, 10_000_000 + rows * 1000 + len(label), 10_000_000 + rows * 1000 + len(label) + rows])


def contents(path) -> tuple:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(READ).fetchone()


def generations() -> set[str]:
    return {p.name for p in generation_paths()}


def generation_paths() -> list:
    path = publish.published_path()
    return sorted(path.with_name(path.name + ".generations").glob("*.duckdb"))


def test_a_publish_writes_what_changed_not_the_whole_warehouse(warehouse):
    first = publish.publish()
    assert first["written_bytes"] == first["bytes"]  # the first generation is written whole
    publish.publish()  # the second, too: the first is the current one
    change(warehouse, 1000, "new")
    third = publish.publish()
    assert 0 < third["written_bytes"] < third["bytes"] / 10, third
    assert contents(publish.published_path()) == contents(warehouse)
    unchanged = publish.publish()
    assert unchanged["written_bytes"] < unchanged["bytes"] / 10, unchanged
    assert contents(publish.published_path()) == contents(warehouse)
    assert len(generations()) == 2


def test_a_reader_keeps_its_snapshot_and_its_generation_is_never_written(warehouse):
    publish.publish()
    before = contents(publish.published_path())
    # Another process reads (as a stakeholder's notebook would), holding the generation open.
    reader = subprocess.Popen([sys.executable, "-c", f"""
import duckdb, sys
con = duckdb.connect({str(publish.published_path())!r}, read_only=True)
print(con.execute({READ!r}).fetchone(), flush=True)
sys.stdin.readline()
print(con.execute({READ!r}).fetchone(), flush=True)
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first_read = reader.stdout.readline().strip()
    try:
        for label in ("a", "bb", "ccc"):
            change(warehouse, 500, label)
            publish.publish()  # no wait for the reader, no error
            assert contents(publish.published_path()) == contents(warehouse)
        assert len(generations()) == 3  # the reader's, the current one and one spare
    finally:
        reader.stdin.write("\n")
        reader.stdin.flush()
        second_read = reader.stdout.readline().strip()
        reader.wait(timeout=30)
    assert first_read == second_read == str(before)  # the same snapshot all along, still whole
    publish.publish()  # the reader has gone: its generation is deleted
    assert len(generations()) == 2
    assert contents(publish.published_path()) == contents(warehouse)


def test_a_copy_published_before_generations_is_replaced(warehouse):
    legacy = publish.published_path()
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(warehouse.read_bytes())  # the copy older versions published: a plain file
    change(warehouse, 10, "x")
    publish.publish()
    assert legacy.is_symlink() and contents(legacy) == contents(warehouse)


def test_the_generation_replaced_is_caught_up_so_the_next_publish_writes_one_change(warehouse):
    publish.publish()
    publish.publish()
    change(warehouse, 1000, "first")
    first = publish.publish()
    # The generation it replaced was given the same change: both generations now hold the warehouse.
    assert first["caught_up_bytes"] > 0
    assert {contents(path) for path in generation_paths()} == {contents(warehouse)}
    change(warehouse, 1000, "second")
    second = publish.publish()
    assert 0 < second["written_bytes"] <= second["caught_up_bytes"] * 2, second  # one change, not two
    assert contents(publish.published_path()) == contents(warehouse)


def test_a_spare_without_digests_that_hold_is_compared_byte_by_byte(warehouse):
    publish.publish()
    publish.publish()
    spare = next(p for p in generation_paths() if p != publish.published_path().resolve())
    damage(spare)  # and its digests already gone, as that publish removed them before its first write
    spare.with_name(spare.name + ".digests").unlink()
    repaired = publish.publish()
    assert repaired["generation"] == spare.name and repaired["written_bytes"] >= 1 << 20
    assert contents(publish.published_path()) == contents(warehouse)
    # Digests saved for a file of another size do not describe it either: the next spare, damaged the same
    # way, keeps its digests but under another size, and is repaired all the same.
    other = next(p for p in generation_paths() if p != publish.published_path().resolve())
    damage(other)
    saved = other.with_name(other.name + ".digests")
    saved.write_bytes(saved.read_bytes().replace(f" {other.stat().st_size}\n".encode(), b" 1\n", 1))
    change(warehouse, 10, "after")
    publish.publish()
    assert publish.published_path().resolve() == other
    assert contents(publish.published_path()) == contents(warehouse)


def damage(path) -> None:
    """Overwrite a MB in the middle of a generation, as a publish killed mid-write leaves it."""
    path.chmod(0o644)
    with open(path, "r+b") as out:
        out.seek(path.stat().st_size // 2)
        out.write(b"\xff" * (1 << 20))
