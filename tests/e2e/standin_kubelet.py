"""A stand-in kubelet for the kwok tier: one real Node that kwok does not manage, whose pods
run as local processes.

kwok "completes" the pods of the nodes it manages without running anything, which is right
for most operator tests and wrong for a Job whose command must really run (a backup). This
node has no `kwok.x-k8s.io/node` annotation, so kwok leaves it alone (the fixture checks that
kwok did not touch a pod before this thread did: a pod finished by someone else fails the
test instead of passing it silently). It carries a NoSchedule taint, so only pods that
tolerate it land here.

For each pod bound to the node: resolve its env (values and Secret keys), rewrite Service
addresses to local ones and the termination-message path to a local file, run the first
container's command, then write the pod's terminal status (exit code and termination message,
with FallbackToLogsOnError semantics) through the status subresource, as a kubelet would.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoal_operator.kube import Kube

TAINT_KEY = "shoal.dev/standin"
POOL = "standin"
ROOT = Path(__file__).resolve().parents[2]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StandInKubelet:
    def __init__(self, kube: Kube, name: str, workdir: Path, rewrite: Callable[[str], str]) -> None:
        self.kube = kube
        self.name = name
        self.workdir = workdir
        self.rewrite = rewrite
        self.ran: list[str] = []  # "namespace/pod" of every pod this stand-in ran
        self.foreign: list[str] = []  # pods that were terminal before this stand-in saw them
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"standin-{name}", daemon=True)
        bin_dir = workdir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        shoal = bin_dir / "shoal"
        shoal.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m shoal.cli "$@"\n')
        shoal.chmod(0o755)
        self.path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"

    # ---- node
    def _node_status(self) -> dict[str, Any]:
        stamp = _now()
        ready = {"type": "Ready", "status": "True", "reason": "StandInReady", "message": "stand-in kubelet",
                 "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
        room = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        return {"conditions": [ready], "capacity": room, "allocatable": room,
                "nodeInfo": {"kubeletVersion": "standin", "operatingSystem": "linux", "architecture": "amd64",
                             "containerRuntimeVersion": "standin://0", "kernelVersion": "", "osImage": "",
                             "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}}

    def start(self) -> StandInKubelet:
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": {"shoal.dev/pool": POOL, "kubernetes.io/hostname": self.name,
                                                           "kubernetes.io/os": "linux"}},
                "spec": {"taints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]}}
        self.kube._call("POST", "/api/v1/nodes", node)
        self._heartbeat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        try:
            self.kube._call("DELETE", f"/api/v1/nodes/{self.name}")
        except Exception:
            pass

    def _heartbeat(self) -> None:
        self.kube._call("PATCH", f"/api/v1/nodes/{self.name}/status", {"status": self._node_status()},
                        content_type="application/merge-patch+json")

    # ---- pods
    def _loop(self) -> None:
        beat = 0.0
        while not self._stop.wait(0.3):
            try:
                if time.monotonic() - beat > 5:
                    self._heartbeat()
                    beat = time.monotonic()
                pods = self.kube._call("GET", "/api/v1/pods", query=[("fieldSelector", f"spec.nodeName={self.name}")])
                for pod in pods.get("items") or []:
                    key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                    if key in self._seen:
                        continue
                    self._seen.add(key)
                    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Running"):
                        self.foreign.append(key)
                        continue
                    threading.Thread(target=self._run_guarded, args=(pod,), daemon=True).start()
            except Exception:
                self.errors.append(traceback.format_exc())

    def _run_guarded(self, pod: dict[str, Any]) -> None:
        try:
            self._run(pod)
        except Exception:
            self.errors.append(traceback.format_exc())

    def _env(self, namespace: str, container: dict[str, Any]) -> dict[str, str]:
        env = {"PATH": self.path, "PYTHONPATH": f"{ROOT / 'node'}", "HOME": os.environ.get("HOME", "/tmp")}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = self.rewrite(str(item["value"]))
                continue
            ref = ((item.get("valueFrom") or {}).get("secretKeyRef")) or {}
            secret = self.kube.get("v1", "Secret", namespace, ref["name"]) or {}
            data = secret.get("data") or {}
            if ref["key"] in data:
                env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
        return env

    def _patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.kube._call("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", {"status": status},
                        content_type="application/merge-patch+json")

    def _run(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        container = pod["spec"]["containers"][0]
        started = _now()
        self._patch_status(namespace, name, {
            "phase": "Running", "startTime": started,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}],
            "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "",
                                   "ready": True, "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": started}}}],
        })
        result = self.workdir / f"{namespace}-{name}.termination"
        result.unlink(missing_ok=True)
        message_path = container.get("terminationMessagePath") or "/dev/termination-log"
        command = [self.rewrite(part).replace(message_path, str(result)) for part in container["command"]]
        command += [self.rewrite(a) for a in container.get("args") or []]
        log_path = self.workdir / f"{namespace}-{name}.log"
        with open(log_path, "wb") as log:
            try:
                code = subprocess.run(command, env=self._env(namespace, container), stdout=log,
                                      stderr=subprocess.STDOUT, timeout=300, cwd=self.workdir).returncode
            except subprocess.TimeoutExpired:
                code = 124
        message = result.read_text() if result.exists() else ""
        if code != 0 and not message.strip() and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = "\n".join(log_path.read_text(errors="replace").splitlines()[-80:])[-2048:]
        finished = _now()
        self.ran.append(f"{namespace}/{name}")
        self._patch_status(namespace, name, {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": finished}],
            "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "",
                                   "ready": False, "restartCount": 0, "started": False,
                                   "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                                            "message": message, "startedAt": started,
                                                            "finishedAt": finished}}}],
        })

    def log_of(self, namespace: str, name: str) -> str:
        path = self.workdir / f"{namespace}-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""
