"""Add two tags of the node image to its docker-archive, each one small layer on top:

  <repo>:<version>-next    the same build, reporting version `<version>-next` (its
                           `shoal/__init__.py` says so), for a real upgrade
  <repo>:<version>-broken  the same build whose `shoal` command starts and never
                           listens, so its pods never become Ready (for a failed upgrade)

Usage: variants.py ARCHIVE  (rewrites ARCHIVE in place, through ARCHIVE.partial)

Why by hand and not with buildah: a second and third `buildah push` would write the
0.9 GB archive twice more and containerd would import it three times; here the three
tags share every layer but their last, so the archive grows by a few kilobytes and cold
CI pays seconds. Layers and configs are plain docker-archive members (Config,
RepoTags, Layers in manifest.json; a layer named by the sha256 of its uncompressed tar,
which is also its diff_id in the config).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import tarfile

INIT = "usr/local/lib/python3.11/site-packages/shoal/__init__.py"
PYC_WHITEOUT = "usr/local/lib/python3.11/site-packages/shoal/__pycache__/.wh.__init__.cpython-311.pyc"
SHOAL_BIN = "usr/local/bin/shoal"
BROKEN_BIN = b"""#!/bin/sh
# e2e: a deliberately broken node image. It starts and never listens, so its
# /healthz never answers and its pods never become Ready.
exec sleep 2147483647
"""


def layer(files: dict[str, tuple[bytes, int]], whiteouts: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    stamp = 1  # fixed, so the digests are reproducible (the stale .pyc is whited out)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, stamp
            tar.addfile(info, io.BytesIO(data))
        for name in whiteouts:
            info = tarfile.TarInfo(name)
            info.mtime = stamp
            tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


def read_member(src: tarfile.TarFile, name: str) -> bytes:
    member = src.extractfile(name)
    assert member is not None, name
    return member.read()


def find_file(src: tarfile.TarFile, layers: list[str], path: str) -> bytes:
    """The content of `path` in the image: the topmost layer that has it."""
    for name in reversed(layers):
        with tarfile.open(fileobj=src.extractfile(name), mode="r|") as lay:
            for entry in lay:
                if entry.name.lstrip("./") == path:
                    data = lay.extractfile(entry)
                    assert data is not None
                    return data.read()
    raise SystemExit(f"{path} not found in the image")


def main(archive: str) -> None:
    partial = archive + ".partial"
    with tarfile.open(archive) as src:
        manifest = json.loads(read_member(src, "manifest.json"))
        base = next(m for m in manifest if not any(t.endswith(("-next", "-broken")) for t in m["RepoTags"]))
        repo, version = base["RepoTags"][0].rsplit(":", 1)
        config = json.loads(read_member(src, base["Config"]))
        init = find_file(src, base["Layers"], INIT).decode()
        next_version = f"{version}-next"
        next_init, n = re.subn(r'(?m)^__version__ = ".*"$', f'__version__ = "{next_version}"', init)
        assert n == 1, "no __version__ line in shoal/__init__.py"
        variants = {
            next_version: layer({INIT: (next_init.encode(), 0o644)}, (PYC_WHITEOUT,)),
            f"{version}-broken": layer({SHOAL_BIN: (BROKEN_BIN, 0o755)}),
        }
        # A rerun replaces the variants it added before.
        old = {n for m in manifest if m is not base for n in [m["Config"], *m["Layers"]]} - set(base["Layers"])
        added: dict[str, bytes] = {}
        entries = [base]
        for tag, blob in variants.items():
            digest = hashlib.sha256(blob).hexdigest()
            cfg = json.loads(json.dumps(config))
            cfg["rootfs"]["diff_ids"].append(f"sha256:{digest}")
            cfg["history"].append({"created_by": f"e2e/node/variants.py: {tag}"})
            cfg_blob = json.dumps(cfg, sort_keys=True).encode()
            cfg_name = hashlib.sha256(cfg_blob).hexdigest() + ".json"
            added[f"{digest}.tar"] = blob
            added[cfg_name] = cfg_blob
            entries.append({"Config": cfg_name, "RepoTags": [f"{repo}:{tag}"], "Layers": [*base["Layers"], f"{digest}.tar"]})
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out:
            for member in src:
                if member.name in ("manifest.json", "repositories") or member.name in added or member.name in old:
                    continue
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
            for name, blob in [*added.items(), ("manifest.json", json.dumps(entries).encode())]:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(blob), 0o644
                out.addfile(info, io.BytesIO(blob))
    os.replace(partial, archive)
    print(" ".join(t for e in entries for t in e["RepoTags"]))


if __name__ == "__main__":
    main(sys.argv[1])
