"""Authentication and RBAC through real pymilvus against `shoal run --auth`.

The negative matrix: for each RPC family, no credentials / a wrong password / a user
without the privilege / the same user once granted it → refused / refused / refused /
served, with the codes Milvus's proxy answers (gRPC UNAUTHENTICATED and
PERMISSION_DENIED, which pymilvus raises as they are). One server for the module; under
the `cluster` target, a proxy of the security cluster (tests/server/conftest.py), whose
second proxy shows that users and grants are the cluster's, not one proxy's.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from conftest import ShoalProcess, Target
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

ROOT = "root:Milvus"
DIM = 4
Server = ShoalProcess | Target  # a standalone server, or a proxy of the security cluster


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, server_target: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalProcess | Target]:
    if server_target == "cluster":
        cluster = request.getfixturevalue("security_cluster")
        yield Target(cluster.uri, cluster.http)
        for name in ("proxy-1", "proxy-2"):
            _no_password((cluster.data_dir / "logs" / f"{name}.log").read_text(errors="replace"))
        return
    base = tmp_path_factory.mktemp("shoal-auth")
    proc = ShoalProcess(base / "data", base / "server.log", ["--auth"])
    proc.start()
    yield proc
    code = proc.stop()
    assert code == 0, proc.tail()
    _no_password(Path(base / "server.log").read_text())


def _no_password(log: str) -> None:
    assert ":Milvus" not in log and "pw-" not in log and "another-pw" not in log, "a password reached the log"


@pytest.fixture(scope="module")
def root(server: Server) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=server.uri, token=ROOT)
    yield c
    c.close()


@pytest.fixture(scope="module")
def coll(root: MilvusClient) -> str:
    name = f"sec_{uuid.uuid4().hex[:8]}"
    root.create_collection(name, dimension=DIM)
    root.insert(name, [{"id": i, "vector": [float(i)] * DIM} for i in range(10)])
    return name


def _raw(server: Server, method: str, request: Any, header: str | None) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = milvus_pb2_grpc.MilvusServiceStub(ch)
        md = [("authorization", header)] if header is not None else None
        return getattr(stub, method)(request, metadata=md, timeout=60)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _user(root: MilvusClient) -> tuple[str, str, str]:
    """A fresh user with a fresh role bound to it: (user, password, role)."""
    tag = uuid.uuid4().hex[:8]
    user, password, role = f"u_{tag}", f"pw-{tag}", f"r_{tag}"
    root.create_user(user, password)
    root.create_role(role)
    root.grant_role(user, role)
    return user, password, role


def _schema() -> Any:
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    return schema


def _denied(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, info.value
    assert "permission deny" in info.value.details()
    return info.value


# ---------------------------------------------------------------- authentication


def test_no_credentials_and_wrong_password_are_refused(server: Server) -> None:
    req = milvus_pb2.ShowCollectionsRequest()
    with pytest.raises(grpc.RpcError) as none:
        _raw(server, "ShowCollections", req, None)
    assert none.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert none.value.details() == "missing authorization in header"
    with pytest.raises(grpc.RpcError) as wrong:
        _raw(server, "ShowCollections", req, _b64("root:not-the-password"))
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.value.details() == "auth check failure, please check username and password are correct"
    with pytest.raises(grpc.RpcError) as garbage:
        _raw(server, "ShowCollections", req, "%%%not base64%%%")
    assert garbage.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # as a pymilvus user meets it: the connection itself is refused
    for kwargs in ({}, {"token": "root:wrong"}, {"user": "nobody", "password": "whatever"}):
        with pytest.raises(MilvusException) as e:
            MilvusClient(uri=server.uri, timeout=30, dedicated=True, **kwargs)
        assert e.value.code == 2 and "Fail connecting" in e.value.message


def test_root_with_token_or_user_and_password(server: Server, coll: str) -> None:
    for kwargs in ({"token": ROOT}, {"user": "root", "password": "Milvus"}):
        c = MilvusClient(uri=server.uri, **kwargs)
        assert coll in c.list_collections()
        c.close()


def test_failed_attempts_are_limited(server: Server, root: MilvusClient) -> None:
    user, password, _ = _user(root)
    req = milvus_pb2.ShowCollectionsRequest()
    for _ in range(5):
        with pytest.raises(grpc.RpcError):
            _raw(server, "ShowCollections", req, _b64(f"{user}:wrong-password"))
    with pytest.raises(grpc.RpcError) as e:  # now even the right password waits out the window
        _raw(server, "ShowCollections", req, _b64(f"{user}:{password}"))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "too many failed login attempts" in e.value.details()


def test_credentials_lifecycle(server: Server, root: MilvusClient) -> None:
    user, password, _ = _user(root)
    assert user in root.list_users()
    me = MilvusClient(uri=server.uri, token=f"{user}:{password}")
    # one's own password needs no grant; the old one is checked
    me.update_password(user, password, "another-pw", reset_connection=True)
    with pytest.raises(MilvusException) as e:
        me.update_password(user, "wrong-old", "x" * 8)
    assert e.value.code == 1100
    me.close()
    req = milvus_pb2.ShowCollectionsRequest()
    with pytest.raises(grpc.RpcError) as old:
        _raw(server, "ShowCollections", req, _b64(f"{user}:{password}"))
    assert old.value.code() == grpc.StatusCode.UNAUTHENTICATED
    _raw(server, "ShowCollections", req, _b64(f"{user}:another-pw"))
    with pytest.raises(MilvusException) as short:
        root.create_user(f"{user}x", "12345")
    assert short.value.code == 1100
    with pytest.raises(MilvusException) as dup:
        root.create_user(user, "long-enough")
    assert dup.value.code == 1100
    with pytest.raises(MilvusException):
        root.drop_user("root")
    root.drop_user(user)
    assert user not in root.list_users()
    with pytest.raises(grpc.RpcError) as gone:
        _raw(server, "ShowCollections", req, _b64(f"{user}:another-pw"))
    assert gone.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ---------------------------------------------------------------- the privilege matrix

FAMILIES: dict[str, tuple[str, str, bool, Callable[[MilvusClient, str], Any]]] = {
    # family: (object type, privilege, on the collection?, the call)
    "create_collection": ("Global", "CreateCollection", False,
                          lambda c, n: c.create_collection(f"new_{uuid.uuid4().hex[:8]}", schema=_schema())),
    "describe": ("Collection", "DescribeCollection", True, lambda c, n: c.describe_collection(n)),
    "insert": ("Collection", "Insert", True, lambda c, n: c.insert(n, [{"id": 100, "vector": [0.5] * DIM}])),
    "delete": ("Collection", "Delete", True, lambda c, n: c.delete(n, filter="id < 0")),
    "search": ("Collection", "Search", True, lambda c, n: c.search(n, [[0.0] * DIM], limit=2)),
    "query": ("Collection", "Query", True, lambda c, n: c.query(n, filter="id >= 0", limit=3)),
    "index": ("Collection", "IndexDetail", True, lambda c, n: c.list_indexes(n)),
    "databases": ("Global", "CreateDatabase", False, lambda c, n: c.create_database(f"db_{uuid.uuid4().hex[:8]}")),
    "roles": ("Global", "SelectOwnership", False, lambda c, n: c.list_roles()),
    "flush": ("Collection", "Flush", True, lambda c, n: c.flush(n)),
}


# the same families as raw requests, for the callers pymilvus cannot even connect as
RAW: dict[str, tuple[str, Callable[[str], Any]]] = {
    "create_collection": ("CreateCollection", lambda n: milvus_pb2.CreateCollectionRequest(collection_name="x")),
    "describe": ("DescribeCollection", lambda n: milvus_pb2.DescribeCollectionRequest(collection_name=n)),
    "insert": ("Insert", lambda n: milvus_pb2.InsertRequest(collection_name=n)),
    "delete": ("Delete", lambda n: milvus_pb2.DeleteRequest(collection_name=n, expr="id < 0")),
    "search": ("Search", lambda n: milvus_pb2.SearchRequest(collection_name=n)),
    "query": ("Query", lambda n: milvus_pb2.QueryRequest(collection_name=n, expr="id >= 0")),
    "index": ("DescribeIndex", lambda n: milvus_pb2.DescribeIndexRequest(collection_name=n)),
    "databases": ("CreateDatabase", lambda n: milvus_pb2.CreateDatabaseRequest(db_name="x")),
    "roles": ("SelectRole", lambda n: milvus_pb2.SelectRoleRequest()),
    "flush": ("Flush", lambda n: milvus_pb2.FlushRequest(collection_names=[n])),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_privilege_matrix(server: Server, root: MilvusClient, coll: str, family: str) -> None:
    object_type, privilege, on_collection, call = FAMILIES[family]
    user, password, role = _user(root)
    method, request = RAW[family]
    for header in (None, _b64(f"{user}:not-{password}")):  # no credentials, a wrong password
        with pytest.raises(grpc.RpcError) as refused:
            _raw(server, method, request(coll), header)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    me = MilvusClient(uri=server.uri, token=f"{user}:{password}")
    try:
        _denied(lambda: call(me, coll))
        root.grant_privilege(role, object_type, privilege, coll if on_collection else "*")
        call(me, coll)
        root.revoke_privilege(role, object_type, privilege, coll if on_collection else "*")
        _denied(lambda: call(me, coll))  # the revoke counts from the next request
    finally:
        me.close()


def test_grant_on_one_collection_is_not_another(server: Server, root: MilvusClient, coll: str) -> None:
    other = f"other_{uuid.uuid4().hex[:8]}"
    root.create_collection(other, dimension=DIM)
    user, password, role = _user(root)
    root.grant_privilege(role, "Collection", "Query", coll)
    me = MilvusClient(uri=server.uri, token=f"{user}:{password}")
    me.query(coll, filter="id >= 0", limit=1)
    err = _denied(lambda: me.query(other, filter="id >= 0", limit=1))
    assert err.details() == f"PrivilegeQuery: permission deny to {user} in the `default` database"
    root.grant_privilege(role, "Collection", "Query", "*")  # the wildcard covers every collection
    me.query(other, filter="id >= 0", limit=1)
    me.close()


def test_builtin_and_custom_privilege_groups(server: Server, root: MilvusClient, coll: str) -> None:
    user, password, role = _user(root)
    me = MilvusClient(uri=server.uri, token=f"{user}:{password}")
    root.grant_privilege_v2(role, "CollectionReadOnly", coll, db_name="default")
    me.search(coll, [[0.0] * DIM], limit=1)
    me.query(coll, filter="id >= 0", limit=1)
    _denied(lambda: me.insert(coll, [{"id": 101, "vector": [0.1] * DIM}]))
    root.revoke_privilege_v2(role, "CollectionReadOnly", coll, db_name="default")
    _denied(lambda: me.search(coll, [[0.0] * DIM], limit=1))

    group = f"g_{uuid.uuid4().hex[:8]}"
    root.create_privilege_group(group)
    root.add_privileges_to_group(group, ["Insert", "Query"])
    listed = {g["privilege_group"]: g["privileges"] for g in root.list_privilege_groups()}
    assert set(listed[group]) == {"Insert", "Query"}
    assert "Search" in listed["CollectionReadOnly"] and "CreateDatabase" in listed["ClusterAdmin"]
    root.grant_privilege_v2(role, group, "*", db_name="*")
    me.insert(coll, [{"id": 102, "vector": [0.2] * DIM}])
    root.remove_privileges_from_group(group, ["Insert"])
    _denied(lambda: me.insert(coll, [{"id": 103, "vector": [0.3] * DIM}]))
    me.query(coll, filter="id >= 0", limit=1)
    with pytest.raises(MilvusException):
        root.drop_privilege_group(group)  # still granted
    root.revoke_privilege_v2(role, group, "*", db_name="*")
    root.drop_privilege_group(group)
    me.close()


def test_admin_role_and_describe(server: Server, root: MilvusClient, coll: str) -> None:
    user, password, role = _user(root)
    root.grant_privilege(role, "Collection", "Search", coll)
    described = root.describe_role(role)
    assert [(p["object_type"], p["object_name"], p["privilege"]) for p in described["privileges"]] == [
        ("Collection", coll, "Search")
    ]
    assert set(root.describe_user(user)["roles"]) >= {role}
    assert {"admin", "public", role} <= set(root.list_roles())
    assert "root" in root.describe_user("root")["roles"] or "admin" in root.describe_user("root")["roles"]
    me = MilvusClient(uri=server.uri, token=f"{user}:{password}")
    _denied(lambda: me.drop_collection(coll))
    root.grant_role(user, "admin")
    assert coll in me.list_collections()
    root.revoke_role(user, "admin")
    _denied(lambda: me.create_database(f"db_{uuid.uuid4().hex[:8]}"))
    with pytest.raises(MilvusException):
        root.drop_role(role)  # it still holds a grant
    root.drop_role(role, force_drop=True)
    assert role not in root.list_roles()
    me.close()


def test_metrics_and_health_stay_open(server: Server) -> None:
    import urllib.error
    import urllib.request

    assert urllib.request.urlopen(f"{server.http}/healthz", timeout=60).status == 200
    assert urllib.request.urlopen(f"{server.http}/metrics", timeout=60).status == 200
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server.http}/v2/vectordb/collections/list", timeout=60)
    assert e.value.code == 401
    req = urllib.request.Request(f"{server.http}/v2/vectordb/collections/list",
                                 headers={"Authorization": f"Bearer {ROOT}"})
    with pytest.raises(urllib.error.HTTPError) as found:
        urllib.request.urlopen(req, timeout=60)
    assert found.value.code == 404  # authenticated; the port serves no REST API


def _post(server: Server, endpoint: str, body: dict[str, Any], token: str | None) -> tuple[int, dict]:
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{server.http}/v2/vectordb/{endpoint}", data=json.dumps(body).encode(),
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_rest_api_checks_users_and_privileges(server: Server, root: MilvusClient, coll: str) -> None:
    body = {"collectionName": coll, "filter": "id >= 0", "limit": 2, "outputFields": ["id"]}
    assert _post(server, "entities/query", body, None)[1]["code"] == 1800
    assert _post(server, "entities/query", body, "root:wrong")[0] == 401
    status, reply = _post(server, "entities/query", body, ROOT)
    assert status == 200 and reply["code"] == 0 and len(reply["data"]) == 2
    user, password, role = _user(root)
    status, reply = _post(server, "entities/query", body, f"{user}:{password}")
    assert status == 403 and reply["code"] == 1401 and "PrivilegeQuery" in reply["message"]
    root.grant_privilege(role, "Collection", "Query", coll)
    assert _post(server, "entities/query", body, f"{user}:{password}")[1]["code"] == 0
    assert _post(server, "entities/insert", {"collectionName": coll, "data": []}, f"{user}:{password}")[0] == 403


def test_backup_admin_endpoints_need_an_admin(server: Server, root: MilvusClient) -> None:
    body = {"database": "default", "collections": ["no_such_collection"]}
    assert _post_admin(server, body, None) == 401
    user, password, _ = _user(root)
    assert _post_admin(server, body, f"{user}:{password}") == 403
    assert _post_admin(server, body, ROOT) not in (401, 403)  # past the check: the node's own answer


def _post_admin(server: Server, body: dict[str, Any], token: str | None) -> int:
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(f"{server.http}/admin/backup/snapshots", data=json.dumps(body).encode(),
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


# ---------------------------------------------------------------- two proxies, one cluster


def _eventually(check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    """`check()` until it passes: another proxy sees a change within its re-read interval (0.5 s).
    One try a second, so a stale proxy's refusals stay below the failed-login limit."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except (AssertionError, grpc.RpcError, MilvusException):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


@pytest.mark.cluster_only("two proxies of one cluster")
def test_users_and_grants_made_through_one_proxy_hold_on_another(
    security_cluster: Any, root: MilvusClient, coll: str
) -> None:
    other = Target(f"http://127.0.0.1:{security_cluster.children['proxy-2'].ports['grpc']}", "")
    user, password, role = _user(root)  # through the first proxy
    req = milvus_pb2.ShowCollectionsRequest()
    _eventually(lambda: _raw(other, "ShowCollections", req, _b64(f"{user}:{password}")))  # logs in on the other
    me = MilvusClient(uri=other.uri, token=f"{user}:{password}")
    try:
        root.grant_privilege(role, "Collection", "DescribeCollection", coll)
        assert _eventually(lambda: me.describe_collection(coll))["collection_name"] == coll
        root.revoke_privilege(role, "Collection", "DescribeCollection", coll)

        def denied() -> None:
            try:
                me.describe_collection(coll)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
                return
            raise AssertionError("the other proxy still allows what was revoked")

        _eventually(denied)  # the revoke holds there too
    finally:
        me.close()
    root.drop_user(user)

    def refused() -> None:
        try:
            _raw(other, "ShowCollections", req, _b64(f"{user}:{password}"))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
            return
        raise AssertionError("the other proxy still lets a dropped user in")

    _eventually(refused)
