"""The security catalog, the guard's decisions, the limiters and the security settings."""

from __future__ import annotations

import base64
import sys
import threading
import uuid
from pathlib import Path

import pytest
from pymilvus.grpc_gen import milvus_pb2

from shoal.config import ConfigError, load_config
from shoal.errors import ShoalError
from shoal.security.catalog import Grant, SecurityCatalog
from shoal.security.guard import AuthError, Guard
from shoal.security.limits import FailedLogins, TokenBucket
from shoal.security.privileges import BUILTIN_GROUPS, RPC_NEEDS
from shoal.storage.meta_store import EtcdMetaStore, FileMetaStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_services import EtcdServer, etcd_server_fixture  # noqa: E402, F401


def _header(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture()
def catalog(tmp_path: Path) -> SecurityCatalog:
    return SecurityCatalog(FileMetaStore(tmp_path / "meta.db"))


def test_root_password_is_set_once_and_stored_only_as_a_hash(tmp_path: Path) -> None:
    first = SecurityCatalog(FileMetaStore(tmp_path / "meta.db"), root_password="s3cret-pw")
    assert first.verify_password("root", "s3cret-pw") and not first.verify_password("root", "Milvus")
    first.create_user("alice", "alice-pw")
    raw = (tmp_path / "meta.db").read_bytes()
    assert b"s3cret-pw" not in raw and b"alice-pw" not in raw and b"$2b$" in raw
    again = SecurityCatalog(FileMetaStore(tmp_path / "meta.db"), root_password="another-pw")
    assert again.verify_password("root", "s3cret-pw")  # only the first start sets it
    assert again.verify_password("alice", "alice-pw") and again.users() == ["alice", "root"]


def test_catalog_rules(catalog: SecurityCatalog) -> None:
    with pytest.raises(ShoalError):
        catalog.create_user("1bad", "long-enough")
    with pytest.raises(ShoalError):
        catalog.delete_user("root")
    with pytest.raises(ShoalError):
        catalog.drop_role("admin")
    catalog.create_role("reader")
    with pytest.raises(ShoalError):
        catalog.grant(Grant("reader", "Collection", "c", "default", "NoSuchPrivilege"))
    with pytest.raises(ShoalError):
        catalog.grant(Grant("reader", "Planet", "c", "default", "Search"))
    with pytest.raises(ShoalError):
        catalog.change_group("CollectionReadOnly", ["Insert"], add=True)
    assert catalog.roles_of("root") == ["admin"] and catalog.users_of("admin") == ["root"]


def test_guard_decisions(catalog: SecurityCatalog) -> None:
    guard = Guard(catalog, FailedLogins())
    catalog.create_user("bob", "bob-password")
    catalog.create_role("r")
    catalog.bind("bob", "r")
    search = milvus_pb2.SearchRequest(collection_name="c1")
    user = guard.authenticate(_header("bob", "bob-password"), "ipv4:10.0.0.1:5000")
    assert user == "bob"
    with pytest.raises(AuthError) as e:
        guard.authorize("bob", "Search", search, "")
    assert e.value.kind == "denied"
    assert e.value.message == "PrivilegeSearch: permission deny to bob in the `default` database"
    catalog.grant(Grant("r", "Collection", "c1", "default", "Search"))
    guard.authorize("bob", "Search", search, "")
    with pytest.raises(AuthError):  # another database
        guard.authorize("bob", "Search", search, "other")
    with pytest.raises(AuthError):  # another collection
        guard.authorize("bob", "Search", milvus_pb2.SearchRequest(collection_name="c2"), "")
    catalog.revoke(Grant("r", "Collection", "c1", "default", "Search"))
    with pytest.raises(AuthError):
        guard.authorize("bob", "Search", search, "")
    catalog.grant(Grant("r", "Collection", "*", "*", "CollectionReadWrite"))
    guard.authorize("bob", "Insert", milvus_pb2.InsertRequest(collection_name="any"), "db9")
    guard.authorize("bob", "Connect", milvus_pb2.ConnectRequest(), "")  # needs no privilege
    guard.authorize("bob", "UpdateCredential", milvus_pb2.UpdateCredentialRequest(username="bob"), "")
    with pytest.raises(AuthError):
        guard.authorize("bob", "UpdateCredential", milvus_pb2.UpdateCredentialRequest(username="root"), "")


def test_proxies_share_users_and_roles_through_etcd(etcd_server: EtcdServer) -> None:
    """Two proxies' catalogs over one etcd key: a change through either counts on the other
    (refresh_s=0: every read looks for a newer revision, so nothing here waits)."""
    prefix = f"sec-{uuid.uuid4().hex}/"
    stores = [EtcdMetaStore(etcd_server.endpoints, prefix) for _ in range(2)]
    try:
        a, b = (SecurityCatalog(s, refresh_s=0) for s in stores)
        assert a.users() == b.users() == ["root"]  # root made once, by whichever came first
        a.create_user("carol", "carol-password")
        guard_b = Guard(b, FailedLogins())
        assert guard_b.authenticate(_header("carol", "carol-password"), "ipv4:10.0.0.1:1") == "carol"
        b.create_role("reader")
        a.bind("carol", "reader")  # a never read `reader`: a change starts from the newest state
        a.grant(Grant("reader", "Collection", "c1", "default", "Query"))
        query = milvus_pb2.QueryRequest(collection_name="c1")
        guard_b.authorize("carol", "Query", query, "")
        a.revoke(Grant("reader", "Collection", "c1", "default", "Query"))
        with pytest.raises(AuthError):  # the revoke counts on b from its next request
            guard_b.authorize("carol", "Query", query, "")
        a.update_password("carol", "changed-password")
        with pytest.raises(AuthError):  # b's remembered header is stale once the hash moved
            guard_b.authenticate(_header("carol", "carol-password"), "ipv4:10.0.0.1:1")

        def make_roles(catalog: SecurityCatalog, tag: str) -> None:
            for i in range(8):
                catalog.create_role(f"{tag}{i}")

        workers = [threading.Thread(target=make_roles, args=(c, t)) for c, t in ((a, "x"), (b, "y"))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        made = {f"{t}{i}" for t in "xy" for i in range(8)}
        assert made <= set(a.roles()) and made <= set(b.roles())  # concurrent writers lose nothing
        assert SecurityCatalog(stores[0], refresh_s=0).roles() == a.roles()
    finally:
        for s in stores:
            s.close()


def test_failed_logins_lock_the_pair_until_the_window_passes(catalog: SecurityCatalog) -> None:
    now = [0.0]
    guard = Guard(catalog, FailedLogins(max_failures=3, window_s=60, clock=lambda: now[0]))
    for _ in range(3):
        with pytest.raises(AuthError):
            guard.authenticate(_header("root", "wrong"), "ipv4:10.0.0.1:1")
    with pytest.raises(AuthError) as e:
        guard.authenticate(_header("root", "Milvus"), "ipv4:10.0.0.1:2")
    assert "too many failed login attempts" in e.value.message
    assert guard.authenticate(_header("root", "Milvus"), "ipv4:10.0.0.2:1") == "root"  # another host
    now[0] = 61.0
    assert guard.authenticate(_header("root", "Milvus"), "ipv4:10.0.0.1:3") == "root"


def test_malformed_headers_are_unauthenticated(catalog: SecurityCatalog) -> None:
    guard = Guard(catalog, FailedLogins())
    for header in (None, "", "!!!", base64.b64encode(b"\xff\xfe").decode(), base64.b64encode(b"apikey").decode()):
        with pytest.raises(AuthError) as e:
            guard.authenticate(header, "ipv4:1.2.3.4:5")
        assert e.value.kind == "unauthenticated"


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(10, clock=lambda: now[0])
    assert bucket.take(10) and not bucket.take(1)
    now[0] = 0.5
    assert bucket.take(5) and not bucket.take(1)
    now[0] = 10.0
    assert bucket.take(50)  # a request larger than the bucket passes when it is full, then waits
    now[0] = 11.0
    assert not bucket.take(1)


def test_privilege_table_is_milvus_own() -> None:
    assert RPC_NEEDS["Search"].privilege == "Search" and RPC_NEEDS["Search"].name_field == "collection_name"
    assert RPC_NEEDS["CreateDatabase"].object_type == "Global"
    assert RPC_NEEDS["Flush"].names_field == "collection_names"
    assert "Connect" not in RPC_NEEDS and "CheckHealth" not in RPC_NEEDS
    assert BUILTIN_GROUPS["CollectionReadOnly"] < BUILTIN_GROUPS["CollectionReadWrite"]


def test_security_settings(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    cfg = load_config(env={"SHOAL_AUTHORIZATION_ENABLED": "true", "SHOAL_TLS_MODE": "1",
                           "SHOAL_TLS_CERT": str(cert), "SHOAL_TLS_KEY": str(cert)})
    assert cfg.authorization_enabled and cfg.tls_mode == 1
    with pytest.raises(ConfigError, match="tls_ca"):
        load_config(env={}, overrides={"tls_mode": 2, "tls_cert": str(cert), "tls_key": str(cert)})
    with pytest.raises(ConfigError, match="tls_cert"):
        load_config(env={}, overrides={"tls_mode": 1})
    with pytest.raises(ConfigError, match="tls_mode"):
        load_config(env={}, overrides={"tls_mode": 3})
    with pytest.raises(ConfigError, match="authorization_enabled"):
        load_config(env={"SHOAL_AUTHORIZATION_ENABLED": "maybe"})
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    assert load_config(env={"SHOAL_ROOT_PASSWORD_FILE": str(pw)}).root_password_value() == "from-a-file"


def test_every_rest_endpoint_stands_for_a_grpc_method() -> None:
    from shoal.api.rest import ROUTE_RPC, catalog, entities

    routes = {**catalog.ROUTES, **entities.ROUTES}
    assert set(routes) <= set(ROUTE_RPC), set(routes) - set(ROUTE_RPC)
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    assert all(m in service.methods_by_name for m in ROUTE_RPC.values())
