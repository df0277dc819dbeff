"""The api layer: gRPC `MilvusService` (servicer + handler families in `rpc/`), proto ↔
domain translation (`translate/`), request checks (`validate`), metrics, the auth and
quota interceptors, TLS and the management HTTP port. It calls `shoal.engine` (through
`EngineAPI`), `shoal.security` (users and privileges) and the leaf modules
`shoal.errors` / `shoal.schema`; nothing below imports it.
"""
