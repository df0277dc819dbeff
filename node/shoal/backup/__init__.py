"""`shoal backup`: consistent backups of a running node to a local directory or S3, and restores.

`destination` (where backups live and their layout), `admin_client` (the node's admin HTTP
endpoints), `operations` (create/list/describe/delete/prune/restore/verify), `command` (the CLI).
The format is documented in docs/backup.md.
"""
