"""Users, roles and privileges, as Milvus has them.

- `privileges`: Milvus's privilege vocabulary and the one table from RPC to the privilege
  it needs (read from the `privilege_ext_obj` option Milvus's own protos carry).
- `catalog`: users (bcrypt hashes), roles, grants and privilege groups in a meta store.
- `guard`: who is calling (the `authorization` header) and whether they may.
- `limits`: token buckets for failed logins and for Milvus's quota settings.

Knows nothing of gRPC servers; `shoal.api.auth` is the interceptor that applies it.
"""
