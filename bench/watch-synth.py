#!/usr/bin/env python3
"""Synthetic infra repo for the `revertbot watch` benchmark (5,000 apps, steady state).

    bench/watch-synth.py DIR [--apps 5000] [--commits 20] [--port 18080] [--seed 7]

Creates (deterministic, `git fast-import`, a few seconds):
    DIR/remote.git   bare remote, branch `main`, and `refs/notes/revertbot`
    DIR/infra        a full clone (origin = DIR/remote.git)
    DIR/apps.json    what the stub Argo CD serves: tip, and per app its images
                     with the digests they "run" (read by bench/watch-argocd-stub.py)
    DIR/bench.env    shell variables (TIP, APPS, PORT, ...)

History: commit 1 adds apps/app-0000 ... apps/app-NNNN (one `deployment.yaml`
each, one container, `ghcr.io/acme/app-NNNN:1.y.z`) and `.revertbot.yaml`
listing every app (`argocd: { app: app-NNNN }`, `argocd.server` =
http://127.0.0.1:PORT); then --commits - 1 small commits, each bumping one
app's image tag. Every app is deployed at the tip (what Argo CD would show
for apps tracking `main`).

Ledger: one JSON note on the tip in `refs/notes/revertbot` holding a
last-known-good record for every app at the tip, with the digest its pod
runs (format: src/domain/ledger.rs `NoteDoc`/`LkgRecord`). So a `check`
cycle is steady state: every app Healthy, recorded, nothing to record or
revert.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
AUTHOR = ("Ana Ops", "ana@acme.example")


def digest_of(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def deployment(name: str, image: str) -> str:
    return (
        f"# {name}\n"
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  labels:\n"
        f"    app: {name}\n"
        "spec:\n"
        "  replicas: 2\n"
        "  selector:\n"
        "    matchLabels:\n"
        f"      app: {name}\n"
        "  template:\n"
        "    metadata:\n"
        "      labels:\n"
        f"        app: {name}\n"
        "    spec:\n"
        "      containers:\n"
        f"        - name: {name}\n"
        f"          image: {image}\n"
        "          ports:\n"
        "            - containerPort: 8080\n"
        "          resources:\n"
        "            requests:\n"
        "              cpu: 100m\n"
        "              memory: 128Mi\n"
    )


def config_yaml(names: list[str], port: int) -> str:
    out = [
        "# revertbot config for the watch benchmark (bench/watch-synth.py)",
        "version: 1",
        "repo:",
        "  remote: origin",
        "  branch: main",
        "argocd:",
        f"  server: http://127.0.0.1:{port}",
        "apps:",
    ]
    for n in names:
        out += [
            f"  - name: {n}",
            f'    paths: ["apps/{n}/**"]',
            f"    argocd: {{ app: {n} }}",
            "    policy: { critical: push }",
        ]
    return "\n".join(out) + "\n"


class Stream:
    def __init__(self, out):
        self.out = out

    def data(self, content: str | bytes):
        b = content.encode() if isinstance(content, str) else content
        self.out.write(b"data %d\n" % len(b))
        self.out.write(b)
        self.out.write(b"\n")

    def commit(self, ref: str, mark: int, when: int, message: str, changes, parent: int | None, notes=()):
        name, email = AUTHOR
        w = self.out.write
        w(f"commit {ref}\n".encode())
        w(b"mark :%d\n" % mark)
        ident = f"{name} <{email}> {when} +0000\n".encode()
        w(b"author " + ident)
        w(b"committer " + ident)
        self.data(message + "\n")
        if parent is not None:
            w(b"from :%d\n" % parent)
        for path, content in changes:
            w(f"M 100644 inline {path}\n".encode())
            self.data(content)
        for target_mark, content in notes:
            w(b"N inline :%d\n" % target_mark)
            self.data(content)
        w(b"\n")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--commits", type=int, default=20)
    ap.add_argument("--port", type=int, default=18080, help="port of the stub Argo CD written into argocd.server")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.commits < 1:
        ap.error("--commits must be at least 1")

    t0 = time.monotonic()
    top = os.path.abspath(args.dir)
    if os.path.exists(top):
        shutil.rmtree(top)
    os.makedirs(top)
    remote = os.path.join(top, "remote.git")
    infra = os.path.join(top, "infra")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    run(["git", "init", "-q", "--bare", "-b", "main", remote], env=env)

    rng = random.Random(args.seed)
    names = [f"app-{i:04d}" for i in range(args.apps)]
    tags = {n: [1, rng.randint(0, 9), rng.randint(0, 20)] for n in names}

    def image(n: str) -> str:
        return "ghcr.io/acme/{}:{}.{}.{}".format(n, *tags[n])

    fi = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done", f"--export-marks={top}/marks"],
        cwd=remote,
        stdin=subprocess.PIPE,
        env=env,
        bufsize=1 << 20,
    )
    s = Stream(fi.stdin)
    when = EPOCH
    initial = [(".revertbot.yaml", config_yaml(names, args.port))]
    initial += [(f"apps/{n}/deployment.yaml", deployment(n, image(n))) for n in names]
    s.commit("refs/heads/main", 1, when, "Initial import of the infra repo", initial, None)
    for mark in range(2, args.commits + 1):
        when += 600
        n = names[rng.randrange(len(names))]
        tags[n][2] += 1
        s.commit(
            "refs/heads/main", mark, when, f"{n}: bump to {image(n)}",
            [(f"apps/{n}/deployment.yaml", deployment(n, image(n)))], mark - 1,
        )
    tip_mark = args.commits
    # The ledger: one note on the tip with every app's LKG record. The note
    # names the revision by its SHA, which fast-import only knows after the
    # commit is written: write the notes commit in a second fast-import run.
    fi.stdin.write(b"done\n")
    fi.stdin.close()
    if fi.wait() != 0:
        print("git fast-import failed", file=sys.stderr)
        return 1
    tip = subprocess.run(["git", "rev-parse", "refs/heads/main"], cwd=remote, env=env,
                         check=True, capture_output=True, text=True).stdout.strip()
    recorded_at = "2024-01-02T00:00:00Z"
    doc = {
        "version": 1,
        "lkg": [
            {
                "app": n,
                "revision": tip,
                "images": [{"image": image(n), "digest": digest_of(image(n))}],
                "source": "controller",
                "recorded_at": recorded_at,
            }
            for n in names
        ],
    }
    note = json.dumps(doc, indent=2) + "\n"
    fi = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=remote, stdin=subprocess.PIPE, env=env)
    w = fi.stdin.write
    w(b"commit refs/notes/revertbot\n")
    ident = f"revertbot <revertbot@localhost> {when + 60} +0000\n".encode()
    w(b"committer " + ident)
    msg = b"Notes added by revertbot\n"
    w(b"data %d\n" % len(msg) + msg)
    w(f"N inline {tip}\n".encode())
    nb = note.encode()
    w(b"data %d\n" % len(nb) + nb + b"\n")
    w(b"done\n")
    fi.stdin.close()
    if fi.wait() != 0:
        print("git fast-import (notes) failed", file=sys.stderr)
        return 1
    run(["git", "repack", "-a", "-d", "-q"], cwd=remote, env=env)
    run(["git", "clone", "-q", remote, infra], env=env)
    run(["git", "fetch", "-q", "origin", "refs/notes/revertbot:refs/notes/revertbot"], cwd=infra, env=env)
    for key, value in [("user.name", "revertbot bench"), ("user.email", "bench@revertbot.example")]:
        run(["git", "config", key, value], cwd=infra, env=env)

    apps = [
        {
            "name": n,
            "images": [{"container": n, "image": image(n), "digest": digest_of(image(n))}],
        }
        for n in names
    ]
    with open(os.path.join(top, "apps.json"), "w") as f:
        json.dump({"tip": tip, "repo_url": remote, "branch": "main", "synced_at": "2024-01-01T12:00:00Z", "apps": apps}, f)
    with open(os.path.join(top, "bench.env"), "w") as f:
        f.write("# generated by bench/watch-synth.py " + " ".join(sys.argv[1:]) + "\n")
        f.write(f"SYNTH_DIR={top}\nREMOTE={remote}\nINFRA={infra}\n")
        f.write(f"APPS={args.apps}\nCOMMITS={args.commits}\nTIP={tip}\nPORT={args.port}\n")
        f.write(f"NOTE_BYTES={len(nb)}\n")
    print(
        f"watch-synth: {args.apps} apps, {args.commits} commits, note {len(nb) / 1e6:.2f} MB, "
        f"{time.monotonic() - t0:.1f}s; see {top}/bench.env",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
