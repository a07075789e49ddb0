#!/usr/bin/env python3
"""A stub Argo CD API server for the watch benchmark: every app Synced and
Healthy at the tip, and a count of requests per endpoint.

    bench/watch-argocd-stub.py SYNTH_DIR [--port 18080] [--token T] [--replicas 2]

Reads SYNTH_DIR/apps.json (bench/watch-synth.py). Serves, on 127.0.0.1, the
routes revertbot's Argo CD client uses, in the shapes of
src/controller/sim/render.rs and /work/shared/fixtures/argocd:

    GET    /api/v1/applications[?fields=items.a.b,...]   list (projection honoured
                                                        for Argo CD's fixed key set)
    GET    /api/v1/applications/{name}[?refresh=normal]  one Application
    GET    /api/v1/applications/{name}/resource-tree     Deployment → ReplicaSet → Pods
    GET    /api/v1/applications/{name}/resource?...kind=Pod  {"manifest": "<pod JSON>"}
    POST   /api/v1/applications/{name}/sync              (counted; answers the app)
    DELETE /api/v1/applications/{name}/operation         (counted; 400 "no operation")

Every app: operationState Succeeded long ago (syncResult.revision = tip),
one history entry, `replicas` Ready pods whose imageID carries the digest
recorded in the ledger. Bearer token required (401 like Argo CD otherwise).

Not counted (bench control): GET /_stats → {"by_endpoint": {...}, "bytes": {...},
"total": N}; POST /_reset.

Responses are rendered once and cached, so the stub's own cost per request
is HTTP parsing only (it runs in another process; the benchmark measures
revertbot's CPU, not the stub's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HONOURED = {
    "metadata.name", "metadata.namespace", "metadata.annotations", "metadata.labels",
    "metadata.creationTimestamp", "metadata.deletionTimestamp", "spec", "spec.destination",
    "spec.project", "spec.source", "spec.sources", "spec.syncPolicy", "status.summary",
    "status.sync.status", "status.sync.revision", "status.health", "status.resources",
    "status.operationState.phase", "status.operationState.startedAt",
    "status.operationState.finishedAt", "operation.sync",
}

NS = "argocd"


def uid(*parts: str) -> str:
    h = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


class World:
    def __init__(self, data: dict, replicas: int):
        self.tip = data["tip"]
        self.repo_url = data["repo_url"]
        self.branch = data["branch"]
        self.synced_at = data["synced_at"]
        self.replicas = replicas
        self.apps = {a["name"]: a for a in data["apps"]}
        self.order = [a["name"] for a in data["apps"]]
        self.full = {n: self.application(self.apps[n]) for n in self.order}
        self.cache: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def src(self, app):
        return {"repoURL": self.repo_url, "path": f"apps/{app['name']}", "targetRevision": self.branch}

    def application(self, app) -> dict:
        name = app["name"]
        src = self.src(app)
        dest = {"server": "https://kubernetes.default.svc", "namespace": name}
        t = self.synced_at
        return {
            "metadata": {
                "name": name, "namespace": NS, "uid": uid(NS, name),
                "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "1",
            },
            "spec": {
                "project": "default", "source": src, "destination": dest,
                "syncPolicy": {"automated": {"prune": False, "selfHeal": True}},
            },
            "status": {
                "health": {"status": "Healthy"},
                "sync": {
                    "status": "Synced", "revision": self.tip,
                    "comparedTo": {"source": src, "destination": dest},
                },
                "reconciledAt": "2024-01-01T12:05:00Z",
                "sourceType": "Directory",
                "controllerNamespace": NS,
                "summary": {"images": [i["image"] for i in app["images"]]},
                "resources": [{
                    "group": "apps", "version": "v1", "kind": "Deployment", "namespace": name,
                    "name": name, "status": "Synced", "health": {"status": "Healthy"},
                }],
                "history": [{
                    "id": 1, "revision": self.tip, "deployStartedAt": t, "deployedAt": t,
                    "source": src, "initiatedBy": {"automated": True},
                }],
                "operationState": {
                    "operation": {"sync": {"revision": self.tip}, "initiatedBy": {"automated": True},
                                  "retry": {"limit": 5}},
                    "phase": "Succeeded", "message": "successfully synced (all tasks run)",
                    "startedAt": t, "finishedAt": t,
                    "syncResult": {"revision": self.tip, "source": src, "resources": [{
                        "group": "apps", "version": "v1", "kind": "Deployment", "namespace": name,
                        "name": name, "status": "Synced", "message": f"deployment.apps/{name} configured",
                        "hookPhase": "Running", "syncPhase": "Sync",
                    }]},
                },
            },
        }

    @staticmethod
    def project(item: dict, keys: list[str]) -> dict:
        out: dict = {}
        for key in keys:
            parts = key.split(".")
            v = item
            for p in parts:
                if not isinstance(v, dict) or p not in v:
                    v = None
                    break
                v = v[p]
            if v is None:
                continue
            dst = out
            for p in parts[:-1]:
                dst = dst.setdefault(p, {})
            dst[parts[-1]] = v
        return out

    def cached(self, key: str, render) -> bytes:
        with self.lock:
            b = self.cache.get(key)
        if b is None:
            b = json.dumps(render(), separators=(",", ":")).encode()
            with self.lock:
                self.cache[key] = b
        return b

    def list(self, fields: str | None) -> bytes:
        def render():
            items = [self.full[n] for n in self.order]
            if fields is not None:
                keys = [k[len("items."):] for k in fields.split(",") if k.startswith("items.")]
                keys = [k for k in keys if k in HONOURED]
                items = [self.project(i, keys) for i in items]
            return {"metadata": {"resourceVersion": "1"}, "items": items}
        return self.cached(f"list?{fields}", render)

    def rs_name(self, name: str) -> str:
        return f"{name}-{hashlib.sha256((name + self.tip).encode()).hexdigest()[:10]}"

    def pod_names(self, name: str) -> list[str]:
        rs = self.rs_name(name)
        return [f"{rs}-{hashlib.sha256(f'{rs}/{i}'.encode()).hexdigest()[:5]}" for i in range(self.replicas)]

    def tree(self, name: str) -> bytes:
        def render():
            app = self.apps[name]
            ns = name
            d_uid = uid(ns, name, "Deployment")
            rs = self.rs_name(name)
            rs_uid = uid(ns, rs, "ReplicaSet")
            nodes = [
                {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": ns, "name": name,
                 "uid": d_uid, "info": [{"name": "Revision", "value": "Rev:1"}],
                 "health": {"status": "Healthy"}, "createdAt": "2024-01-01T00:00:00Z"},
                {"group": "apps", "version": "v1", "kind": "ReplicaSet", "namespace": ns, "name": rs,
                 "uid": rs_uid,
                 "parentRefs": [{"group": "apps", "kind": "Deployment", "namespace": ns, "name": name, "uid": d_uid}],
                 "info": [{"name": "Revision", "value": "Rev:1"}], "health": {"status": "Healthy"},
                 "createdAt": self.synced_at},
            ]
            n = len(app["images"])
            for pod in self.pod_names(name):
                nodes.append({
                    "version": "v1", "kind": "Pod", "namespace": ns, "name": pod, "uid": uid(ns, pod, "Pod"),
                    "parentRefs": [{"group": "apps", "kind": "ReplicaSet", "namespace": ns, "name": rs, "uid": rs_uid}],
                    "info": [{"name": "Status Reason", "value": "Running"}, {"name": "Node", "value": "node-1"},
                             {"name": "Containers", "value": f"{n}/{n}"}],
                    "images": [i["image"] for i in app["images"]],
                    "health": {"status": "Healthy"}, "createdAt": self.synced_at,
                })
            return {"nodes": nodes, "hosts": [{"name": "node-1"}]}
        return self.cached(f"tree/{name}", render)

    def pod(self, name: str, ns: str, pod: str) -> bytes | None:
        if ns != name or pod not in self.pod_names(name):
            return None

        def render():
            app = self.apps[name]
            t = self.synced_at
            cond = lambda k: {"type": k, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
            manifest = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns, "uid": uid(ns, pod, "Pod"), "creationTimestamp": t},
                "spec": {"containers": [{"name": i["container"], "image": i["image"]} for i in app["images"]],
                         "restartPolicy": "Always", "nodeName": "node-1"},
                "status": {
                    "phase": "Running",
                    "conditions": [cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
                    "containerStatuses": [{
                        "name": i["container"], "image": i["image"],
                        "imageID": i["image"].rsplit(":", 1)[0] + "@" + i["digest"],
                        "ready": True, "restartCount": 0, "state": {"running": {"startedAt": t}},
                    } for i in app["images"]],
                    "startTime": t, "hostIP": "10.0.0.1", "podIP": "10.244.0.10", "qosClass": "Burstable",
                },
            }
            return {"manifest": json.dumps(manifest, separators=(",", ":"), sort_keys=True)}
        return self.cached(f"pod/{name}/{pod}", render)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.calls: dict[str, int] = {}
        self.bytes: dict[str, int] = {}

    def add(self, endpoint: str, nbytes: int):
        with self.lock:
            self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
            self.bytes[endpoint] = self.bytes.get(endpoint, 0) + nbytes

    def snapshot(self) -> dict:
        with self.lock:
            return {"by_endpoint": dict(self.calls), "bytes": dict(self.bytes), "total": sum(self.calls.values())}


def make_handler(world: World, stats: Stats, token: str):
    def err(code: int, grpc: int, message: str) -> tuple[int, bytes]:
        return code, json.dumps({"error": message, "code": grpc, "message": message}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Headers and body go out in separate writes: without NODELAY,
            # Nagle + the client's delayed ACK add ~40 ms to every response.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *a):  # quiet
            pass

        def send(self, endpoint: str | None, code: int, body: bytes):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if endpoint is not None:
                stats.add(endpoint, len(body))

        def route(self, method: str):
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if url.path == "/_stats":
                return self.send(None, 200, json.dumps(stats.snapshot()).encode())
            if url.path == "/_reset":
                stats.reset()
                return self.send(None, 200, b"{}")
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            endpoint = "other"
            if parts[:3] == ["api", "v1", "applications"]:
                rest = parts[3:]
                if not rest:
                    endpoint = "list"
                elif len(rest) == 1:
                    endpoint = "get?refresh" if "refresh" in q else "get"
                else:
                    endpoint = rest[1]
                endpoint = f"{method} {endpoint}"
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return self.send(endpoint, *err(401, 16, "no session information"))
            if auth[len("Bearer "):] != token:
                return self.send(endpoint, *err(401, 16, "invalid session: token signature is invalid"))
            if parts[:3] != ["api", "v1", "applications"]:
                return self.send(endpoint, *err(404, 5, "not found"))
            rest = parts[3:]
            if not rest and method == "GET":
                return self.send(endpoint, 200, world.list(q.get("fields")))
            name = rest[0]
            if name not in world.apps or q.get("appNamespace", NS) != NS:
                if "project" in q:
                    return self.send(endpoint, *err(404, 5, f'applications.argoproj.io "{name}" not found'))
                return self.send(endpoint, *err(403, 7, "permission denied"))
            if len(rest) == 1 and method == "GET":
                return self.send(endpoint, 200, world.cached(f"app/{name}", lambda: world.full[name]))
            if rest[1:] == ["resource-tree"] and method == "GET":
                return self.send(endpoint, 200, world.tree(name))
            if rest[1:] == ["resource"] and method == "GET":
                body = None
                if q.get("kind") == "Pod" and q.get("version") == "v1" and not q.get("group"):
                    body = world.pod(name, q.get("namespace", ""), q.get("resourceName", ""))
                if body is None:
                    return self.send(endpoint, *err(400, 3, f"{q.get('kind')} not found as part of application {name}"))
                return self.send(endpoint, 200, body)
            if rest[1:] == ["sync"] and method == "POST":
                return self.send(endpoint, 200, world.cached(f"app/{name}", lambda: world.full[name]))
            if rest[1:] == ["operation"] and method == "DELETE":
                return self.send(endpoint, *err(400, 3, "Unable to terminate operation. No operation is in progress"))
            return self.send(endpoint, *err(404, 5, "not found"))

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

        def do_DELETE(self):
            self.route("DELETE")

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("synth_dir")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--token", default=os.environ.get("ARGOCD_AUTH_TOKEN", "bench-token"))
    ap.add_argument("--replicas", type=int, default=2, help="pods per app")
    args = ap.parse_args()
    with open(os.path.join(args.synth_dir, "apps.json")) as f:
        world = World(json.load(f), args.replicas)
    world.list(None)
    stats = Stats()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(world, stats, args.token))
    server.daemon_threads = True
    print(f"stub argocd: {len(world.apps)} apps on http://127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
