"""`shoal backup create|list|describe|delete|prune|restore|verify` (argument parsing and output).

    shoal backup create  --uri URI --to DEST [--collection NAME ...] [--database DB] [--name NAME]
    shoal backup restore --uri URI --from DEST --name NAME [--collection NAME ...] [--rename OLD:NEW ...]
                         [--database DB] [--drop-existing] [--no-indexes]
    shoal backup list    --from DEST [--json]
    shoal backup describe --from DEST --name NAME
    shoal backup delete  --from DEST (--name NAME ... | --match PREFIX) [--missing-ok]
    shoal backup prune   --from DEST [--keep-last N] [--max-age 7d] [--match PREFIX]
    shoal backup verify  --from DEST --name NAME

URI is the node's HTTP port (default http://127.0.0.1:9091). DEST is a directory or
s3://bucket/prefix; S3 endpoint and keys come from the --s3-* flags, SHOAL_S3_* or AWS_*.
`create` prints the backup's name on its last line. A failure is one line on stderr and exit
status 3 when the request was refused (retrying cannot help), 1 otherwise (unreachable, I/O).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from shoal.errors import Code, ShoalError

EXIT_TRANSIENT = 1  # unreachable node or storage, I/O: worth a retry
EXIT_REFUSED = 3  # the request itself was refused (bad name, missing collection, existing target)
_AGE = re.compile(r"^(\d+)([smhd]?)$")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("backup", help="create, restore and manage backups")
    cmds = p.add_subparsers(dest="backup_command", required=True)

    def storage(q: argparse.ArgumentParser, flag: str) -> None:
        q.add_argument(flag, dest="dest", required=True, help="a directory or s3://bucket/prefix")
        q.add_argument("--s3-endpoint", help="S3 endpoint URL (else SHOAL_S3_ENDPOINT, AWS_ENDPOINT_URL)")
        q.add_argument("--s3-access-key", help="else SHOAL_S3_ACCESS_KEY, AWS_ACCESS_KEY_ID")
        q.add_argument("--s3-secret-key", help="else SHOAL_S3_SECRET_KEY, AWS_SECRET_ACCESS_KEY")
        q.add_argument("--s3-region", help="else SHOAL_S3_REGION, AWS_REGION")

    def server(q: argparse.ArgumentParser) -> None:
        q.add_argument("--uri", default="http://127.0.0.1:9091", help="the node's HTTP port (default %(default)s)")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")

    c = cmds.add_parser("create", help="back up collections of a running node")
    server(c)
    storage(c, "--to")
    c.add_argument("--collection", action="append", default=[], help="a collection (repeat; default: all of the database)")
    c.add_argument("--database", default="", help="database (default 'default'; '*' = every database)")
    c.add_argument("--name", default="", help="backup name (default <prefix><time>-<random>)")
    c.add_argument("--name-prefix", default="backup-", help="prefix of a generated name (default %(default)s)")
    c.add_argument("--result-file", help="also write the JSON summary here (e.g. /dev/termination-log)")

    r = cmds.add_parser("restore", help="restore a backup into a running node")
    server(r)
    storage(r, "--from")
    r.add_argument("--name", required=True)
    r.add_argument("--collection", action="append", default=[], help="restore only these (repeat)")
    r.add_argument("--rename", action="append", default=[], metavar="OLD:NEW",
                   help="restore collection OLD as NEW (NEW may be DB.NAME); repeat")
    r.add_argument("--database", default="", help="restore into this database")
    r.add_argument("--drop-existing", action="store_true", help="replace collections that already exist")
    r.add_argument("--no-indexes", action="store_true", help="leave index files out; the node rebuilds them")
    r.add_argument("--result-file", help="also write the JSON summary here (e.g. /dev/termination-log)")

    for verb, text in (("list", "list backups"), ("describe", "show one backup"), ("verify", "check every checksum"),
                       ("delete", "delete backups and the files only they use"), ("prune", "apply retention")):
        q = cmds.add_parser(verb, help=text)
        storage(q, "--from")
        if verb in ("describe", "verify"):
            q.add_argument("--name", required=True)
        if verb == "delete":
            q.add_argument("--name", action="append", default=[])
            q.add_argument("--match", default="", help="every backup whose name starts with this")
            q.add_argument("--missing-ok", action="store_true", help="a named backup that does not exist is no error")
        if verb == "list":
            q.add_argument("--json", action="store_true")
        if verb == "verify":
            q.add_argument("--no-progress", action="store_true")
        if verb == "prune":
            q.add_argument("--keep-last", type=int, default=0)
            q.add_argument("--max-age", default="", help="e.g. 7d, 12h, 30m, 3600")
            q.add_argument("--match", default="", help="only backups whose names start with this")


def parse_age(text: str) -> float:
    if not text:
        return 0.0
    m = _AGE.match(text.strip())
    if not m:
        raise ShoalError(1100, f"bad age {text!r} (e.g. 7d, 12h, 30m, 3600)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def parse_renames(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition(":")
        if not sep or not old or not new:
            raise ShoalError(1100, f"bad --rename {item!r}: OLD:NEW")
        out[old] = new
    return out


def run(args: argparse.Namespace) -> int:
    from shoal.backup import operations as ops
    from shoal.backup.admin_client import AdminClient
    from shoal.backup.destination import S3Options, open_destination

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        dest = open_destination(args.dest, S3Options(args.s3_endpoint, args.s3_access_key, args.s3_secret_key,
                                                     args.s3_region))
        verb = args.backup_command
        progress = not getattr(args, "no_progress", False)
        if verb == "create":
            m = ops.create(AdminClient(args.uri), dest, collections=args.collection, database=args.database,
                           name=args.name or ops.default_name(args.name_prefix), progress=progress, log=log)
            _result(args, {"backup": m["name"], "ts": m["ts"], "bytes": m["stats"]["bytes"],
                           "uploadedBytes": m["stats"]["uploaded_bytes"],
                           "rows": {f"{x['database']}.{x['name']}": x["rows"] for x in m["collections"]}})
            _print(ops.summary(m))
            print(m["name"])
        elif verb == "restore":
            done = ops.restore(AdminClient(args.uri), dest, args.name, collections=args.collection,
                               renames=parse_renames(args.rename), database=args.database,
                               drop_existing=args.drop_existing, with_indexes=not args.no_indexes,
                               progress=progress, log=log)
            _result(args, {"backup": args.name, "rows": {f"{x['database']}.{x['name']}": x["rows"] for x in done}})
            _print({"restored": done})
        elif verb == "list":
            found = ops.list_backups(dest)
            if args.json:
                _print(found)
            else:
                for b in found:
                    cols = ",".join(f"{c['database']}.{c['name']}" for c in b["collections"])
                    print(f"{b['name']}\t{b['created_at']}\t{b['rows']} rows\t{b['bytes']} bytes\t{cols}")
        elif verb == "describe":
            _print(ops.summary(dest.manifest(args.name)))
        elif verb == "delete":
            names = list(args.name) + [n for n in dest.names() if args.match and n.startswith(args.match)]
            if args.missing_ok:
                names = [n for n in names if dest.has_manifest(n)]
            if not names and not args.match and not args.missing_ok:
                raise ShoalError(1100, "give --name NAME (repeat) or --match PREFIX")
            _print(ops.delete(dest, names, log=log))
        elif verb == "prune":
            _print(ops.prune(dest, keep_last=args.keep_last, max_age_s=parse_age(args.max_age), match=args.match,
                             log=log))
        elif verb == "verify":
            result = ops.verify(dest, args.name, progress=progress)
            _print(result)
            if result["bad"]:
                print(f"shoal backup: backup {args.name} is damaged: {len(result['bad'])} bad files", file=sys.stderr)
                return EXIT_REFUSED
        return 0
    except ShoalError as e:
        print(f"shoal backup: {e.message}", file=sys.stderr)
        return EXIT_TRANSIENT if e.code == Code.UNEXPECTED else EXIT_REFUSED


def _result(args: argparse.Namespace, value: dict[str, Any]) -> None:
    """The short summary the operator reads back from a pod's termination message (<= 4 KiB)."""
    if args.result_file:
        text = json.dumps(value, separators=(",", ":"))
        if len(text) > 4000:
            value = {k: v for k, v in value.items() if k != "rows"}
            text = json.dumps(value, separators=(",", ":"))
        with open(args.result_file, "w") as f:
            f.write(text)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=1), flush=True)
