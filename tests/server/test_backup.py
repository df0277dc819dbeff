"""`shoal backup` against a real server through real pymilvus: a snapshot at one timestamp
while inserts go on, restore under a new name, incremental uploads, refusals, verify, and
the same against SeaweedFS S3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SHOAL, ShoalProcess
from pymilvus import Collection, MilvusClient, connections
from test_data import all_types_collection, make_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_services import SeaweedS3, seaweedfs_s3_fixture  # noqa: E402, F401

VECTORS = ["fv", "bv", "hv", "bfv", "iv", "sv"]
METRICS = {"fv": "L2", "bv": "HAMMING", "hv": "IP", "bfv": "IP", "iv": "L2", "sv": "IP"}


def backup_cli(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "node"), **(env or {})}
    done = subprocess.run([*SHOAL, "backup", *args], capture_output=True, text=True, env=full_env, timeout=300)
    if ok:
        assert done.returncode == 0, f"shoal backup {args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.strip().splitlines()[-1]


def read_manifest(dest: Path, name: str) -> dict:
    return json.loads((dest / "backups" / name / "manifest.json").read_text())


class Inserter(threading.Thread):
    """Keeps inserting rows named late<i> (ORM insert: its result carries the timestamp)."""

    def __init__(self, uri: str, name: str) -> None:
        super().__init__(daemon=True)
        self.alias = f"bk-{name}"
        connections.connect(self.alias, uri=uri)
        self.coll = Collection(name, using=self.alias)
        self.stop = threading.Event()
        self.batches: list[tuple[int, list[str]]] = []  # (timestamp, keys)
        self.error: BaseException | None = None
        self._next = 0

    def insert_batch(self) -> None:
        rows = make_rows(5)
        for r in rows:
            r["pk"] = f"late{self._next}"
            self._next += 1
        result = self.coll.insert(rows)
        self.batches.append((int(result.timestamp), [r["pk"] for r in rows]))

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.insert_batch()
        except BaseException as e:  # reported by the test
            self.error = e

    def keys_at(self, ts: int) -> set[str]:
        return {k for t, keys in self.batches if t <= ts for k in keys}


def rows_by_key(client: MilvusClient, name: str, keys: list[str]) -> dict[str, dict]:
    got = client.query(name, filter="pk in {keys}", filter_params={"keys": keys}, output_fields=["*"], limit=16384)
    return {r["pk"]: r for r in got}


def same_row(a: dict, b: dict) -> bool:
    def norm(v: object) -> object:
        if isinstance(v, list) and len(v) == 1 and isinstance(v[0], bytes):
            return v[0]
        if isinstance(v, np.ndarray):
            return v.tobytes()
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v
    return norm(a) == norm(b)


def same_hits(a: list[dict], b: list[dict]) -> bool:
    """Equal distances, and equal keys among the hits strictly better than the last one (rows
    tied with the last hit may be cut in either order)."""
    da = [round(float(h["distance"]), 4) for h in a]
    db = [round(float(h["distance"]), 4) for h in b]
    if da != db:
        return False
    last = da[-1] if da else None
    return {h["pk"] for h in a if round(float(h["distance"]), 4) != last} == {
        h["pk"] for h in b if round(float(h["distance"]), 4) != last}


@pytest.fixture(scope="module")
def source(shoal: ShoalProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One collection of every type: 3,000 sealed and indexed rows, 200 deleted, then a
    backup taken while inserts go on."""
    client = MilvusClient(uri=shoal.uri)
    name = "bk_src"
    all_types_collection(client, name)
    for start in range(0, 3000, 1000):
        rows = make_rows(1000)
        for j, r in enumerate(rows):
            r["pk"] = f"k{start + j}"
        client.insert(name, rows)
    client.flush(name)
    deadline = time.monotonic() + 180  # built indexes: their files go into the backup too
    while time.monotonic() < deadline and any(
        client.describe_index(name, i).get("pending_index_rows", 0) for i in client.list_indexes(name)
    ):
        time.sleep(0.2)
    deleted = [f"k{i}" for i in range(0, 3000, 15)]
    client.delete(name, filter="pk in {keys}", filter_params={"keys": deleted})
    dest = tmp_path_factory.mktemp("backups")
    inserter = Inserter(shoal.uri, name)
    inserter.start()
    deadline = time.monotonic() + 120
    while len(inserter.batches) < 2 and time.monotonic() < deadline:  # some rows land before T
        time.sleep(0.05)
    try:
        done = backup_cli("create", "--uri", shoal.http, "--to", str(dest), "--collection", name, "--no-progress")
    finally:
        inserter.stop.set()
        inserter.join(120)
    assert inserter.error is None, inserter.error
    inserter.insert_batch()  # and some after it, however the threads were scheduled
    backup = last_line(done)
    yield {"client": client, "name": name, "dest": dest, "backup": backup, "deleted": set(deleted),
           "inserter": inserter, "manifest": read_manifest(dest, backup), "uri": shoal.uri, "http": shoal.http}
    connections.disconnect(inserter.alias)
    client.close()


def test_restore_under_a_new_name_answers_like_the_original_at_the_backup_timestamp(source: dict) -> None:
    client, name, dest = source["client"], source["name"], source["dest"]
    manifest = source["manifest"]
    ts = manifest["ts"]
    late_in = source["inserter"].keys_at(ts)
    late_out = source["inserter"].keys_at(2**63) - late_in
    assert late_in and late_out
    backup_cli("restore", "--uri", source["http"], "--from", str(dest), "--name", source["backup"],
               "--rename", f"{name}:bk_copy", "--no-progress")
    expected = ({f"k{i}" for i in range(3000)} - source["deleted"]) | late_in
    assert manifest["collections"][0]["rows"] == len(expected)
    assert any(seg["indexes"] for seg in manifest["collections"][0]["segments"])
    client.load_collection("bk_copy")
    restored = {r["pk"] for r in client.query("bk_copy", filter='pk != ""', output_fields=["pk"], limit=16384)}
    assert restored == expected
    assert not restored & late_out and not restored & source["deleted"]
    keys = sorted(expected)
    original = rows_by_key(client, name, keys)
    copy = rows_by_key(client, "bk_copy", keys)
    assert all(same_row(original[k], copy[k]) for k in keys)
    # top-k: the original restricted to the rows visible at the timestamp
    at_ts = 'not pk like "late%" or pk in {late}'
    for field in ("fv", "bv", "sv"):
        value = copy[keys[7]][field]
        probe = [value[0] if isinstance(value, list) and isinstance(value[0], bytes) else value]
        a = client.search(name, data=probe, anns_field=field, limit=10, filter=at_ts,
                          filter_params={"late": sorted(late_in)}, search_params={"metric_type": METRICS[field]})
        b = client.search("bk_copy", data=probe, anns_field=field, limit=10,
                          search_params={"metric_type": METRICS[field]})
        assert same_hits(a[0], b[0]), (field, a[0], b[0])
    desc = client.describe_collection("bk_copy")
    assert {f["name"] for f in desc["fields"]} >= {"pk", *VECTORS}
    assert desc["enable_dynamic_field"]
    assert {i for i in client.list_indexes("bk_copy")} == set(client.list_indexes(name))


def test_second_backup_sends_only_new_files(source: dict) -> None:
    client, name, dest = source["client"], source["name"], source["dest"]
    rows = make_rows(50)
    for j, r in enumerate(rows):
        r["pk"] = f"more{j}"
    client.insert(name, rows)
    done = backup_cli("create", "--uri", source["http"], "--to", str(dest), "--collection", name,
                      "--name", "second", "--no-progress")
    assert last_line(done) == "second"
    first, second = source["manifest"], read_manifest(dest, "second")
    new = set(second["files"]) - set(first["files"])
    assert second["stats"]["uploaded_bytes"] == sum(second["files"][s] for s in new)
    assert second["stats"]["uploaded_files"] == len(new)
    assert 0 < second["stats"]["uploaded_bytes"] < second["stats"]["bytes"] // 2
    listed = backup_cli("list", "--from", str(dest), "--json")
    assert {b["name"] for b in json.loads(listed.stdout)} >= {source["backup"], "second"}
    verified = json.loads(backup_cli("verify", "--from", str(dest), "--name", "second", "--no-progress").stdout)
    assert verified["bad"] == [] and verified["files"] == len(second["files"])


def test_restore_refuses_an_existing_name_unless_told_to_drop_it(source: dict) -> None:
    client, name, dest = source["client"], source["name"], source["dest"]
    refused = backup_cli("restore", "--uri", source["http"], "--from", str(dest), "--name", source["backup"],
                         "--no-progress", ok=False)
    assert refused.returncode == 3  # refused: a retry cannot help
    assert f"collection {name} already exists" in refused.stderr and "--drop-existing" in refused.stderr
    client.create_collection("bk_target", dimension=4)
    backup_cli("restore", "--uri", source["http"], "--from", str(dest), "--name", source["backup"],
               "--rename", f"{name}:bk_target", "--drop-existing", "--no-indexes", "--no-progress")
    client.load_collection("bk_target")
    count = client.query("bk_target", filter="", output_fields=["count(*)"])[0]["count(*)"]
    assert count == source["manifest"]["collections"][0]["rows"]


def test_verify_finds_a_damaged_file_and_an_interrupted_backup_is_not_listed(source: dict, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    shutil.copytree(source["dest"], dest)
    manifest = read_manifest(dest, source["backup"])
    victim = max(manifest["files"], key=lambda s: manifest["files"][s])
    blob = dest / "blobs" / victim[:2] / victim
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    bad = backup_cli("verify", "--from", str(dest), "--name", source["backup"], "--no-progress", ok=False)
    assert bad.returncode == 3 and victim in bad.stdout
    # blobs without a manifest (a create killed midway) are no backup
    (dest / "backups" / "half").mkdir()
    listed = json.loads(backup_cli("list", "--from", str(dest), "--json").stdout)
    assert "half" not in {b["name"] for b in listed}


def test_backup_and_restore_through_seaweedfs_s3(source: dict, seaweedfs_s3: SeaweedS3) -> None:
    s3 = seaweedfs_s3
    env = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key, "SHOAL_S3_ENDPOINT": s3.endpoint_url}
    where = "s3://shoal-backups/team/a"
    done = backup_cli("create", "--uri", source["http"], "--to", where, "--collection", source["name"],
                      "--name", "s3one", "--no-progress", env=env)
    assert last_line(done) == "s3one"
    again = backup_cli("create", "--uri", source["http"], "--to", where, "--collection", source["name"],
                       "--name", "s3two", "--no-progress", env=env)
    two = json.loads(backup_cli("describe", "--from", where, "--name", "s3two", env=env).stdout)
    assert two["uploaded_bytes"] < two["bytes"], again.stdout
    assert json.loads(backup_cli("verify", "--from", where, "--name", "s3two", "--no-progress", env=env).stdout)["bad"] == []
    backup_cli("restore", "--uri", source["http"], "--from", where, "--name", "s3one",
               "--rename", f"{source['name']}:bk_from_s3", "--no-progress", env=env)
    client = source["client"]
    client.load_collection("bk_from_s3")
    one = json.loads(backup_cli("describe", "--from", where, "--name", "s3one", env=env).stdout)
    count = client.query("bk_from_s3", filter="", output_fields=["count(*)"])[0]["count(*)"]
    assert count == one["rows"]
    backup_cli("delete", "--from", where, "--name", "s3one", env=env)
    assert "s3one" not in backup_cli("list", "--from", where, env=env).stdout
    assert json.loads(backup_cli("verify", "--from", where, "--name", "s3two", "--no-progress", env=env).stdout)["bad"] == []


def test_a_create_that_dies_midway_leaves_no_manifest_and_releases_the_snapshot(
    source: dict, shoal: ShoalProcess, tmp_path: Path
) -> None:
    from shoal.backup import operations as ops
    from shoal.backup.admin_client import AdminClient
    from shoal.backup.destination import open_destination

    dest = open_destination(str(tmp_path / "dying"))
    real_put = dest.put_blob
    sent: list[str] = []

    def put_then_die(sha: str, stream: object) -> None:
        if len(sent) == 2:
            raise OSError("disk gone")
        real_put(sha, stream)  # type: ignore[arg-type]
        sent.append(sha)

    dest.put_blob = put_then_die  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk gone"):
        ops.create(AdminClient(source["http"]), dest, collections=[source["name"]], name="dies", progress=False)
    assert len(dest.blobs()) == 2 and dest.names() == [] and not dest.has_manifest("dies")
    staging = shoal.data_dir / "backup-staging"
    assert not staging.exists() or list(staging.iterdir()) == []
