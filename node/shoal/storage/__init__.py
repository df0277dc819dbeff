"""Storage layer: bytes on disk and in remote stores; knows no engine types.

- `codec`: self-describing binary encoding of batches and small records (no pickle).
- `wal`: write-ahead log with CRC-checked records and group commit.
- `segment_files`: immutable sealed segment directories (memory-mappable columns).
- `meta_store`: metadata key-value stores with atomic commits (file | etcd).
- `object_store`: blob storage (local directory | S3).

Imports only `shoal.errors`, `shoal.schema`, numpy and the client libraries.
"""
