#!/usr/bin/env python3
"""Synthetic infra repo for revertbot's benchmarks, built with `git fast-import`.

    bench/synth-infra.py DIR [--commits 100000] [--apps 2000] [--seed 42]

Creates
    DIR/remote.git   bare remote (what GitHub would be), branch `main`
    DIR/infra        a full clone of it (origin = DIR/remote.git)
    DIR/bench.env    shell variables describing the planted bad deploy

History (linear, first parent = the branch):
    commit 1         adds apps/app-0000 … apps/app-NNNN (Deployment with 1-3
                     containers, Service, kustomization.yaml) and
                     .revertbot.yaml listing every app
    commits 2..N     each changes one file of one app: image tag bump,
                     replicas, an env value, a resource limit, a label, a
                     service port. Apps are picked with a skew (a few apps
                     are busy, most are quiet), as in real infra repos.

The benchmark app (--bench-app, default app-0042, always 2 containers) is
planted: LKG is the commit --lkg-back commits before the tip; between LKG and
the deployed revision (--deployed-back commits before the tip) exactly
--culprits commits change it (main image bump, env change, worker image
bump); every other commit in that window, and after it, touches other apps.

Deterministic: the same arguments give byte-identical history (fixed seed,
fixed dates and identities). Prints timings on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time

EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
AUTHORS = [
    ("Ana Ops", "ana@acme.example"),
    ("Bo Platform", "bo@acme.example"),
    ("Renovate Bot", "bot@renovate.example"),
    ("Flux Image Automation", "fluxcd@acme.example"),
    ("Chidi SRE", "chidi@acme.example"),
]
TEAMS = ["payments", "search", "checkout", "identity", "ml", "growth", "core"]


def digest_of(image: str) -> str:
    """The digest an image:tag 'resolved to' (derived, stable)."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


class App:
    """State of one app's manifests; render() produces its three files."""

    def __init__(self, idx: int, rng: random.Random, containers: int | None = None):
        self.idx = idx
        self.name = f"app-{idx:04d}"
        self.team = rng.choice(TEAMS)
        n = containers if containers is not None else rng.choice([1, 1, 1, 2, 2, 3])
        self.containers = []
        kinds = ["", "-worker", "-proxy"]
        for k in range(n):
            self.containers.append(
                {
                    "name": self.name + (kinds[k] or ""),
                    "repo": f"ghcr.io/acme/{self.name}{kinds[k]}",
                    "tag": [1, rng.randint(0, 9), rng.randint(0, 20)],
                    "port": 8080 + k,
                    "cpu": rng.choice([100, 200, 250, 500]),
                    "mem": rng.choice([128, 256, 512, 1024]),
                    "env": {
                        "LOG_LEVEL": rng.choice(["info", "warn"]),
                        "FEATURE_FLAGS": "",
                        "POOL_SIZE": str(rng.choice([4, 8, 16])),
                    },
                }
            )
        self.replicas = rng.choice([1, 2, 2, 3, 4, 6])
        self.svc_port = 80
        self.tier = "backend"

    def image(self, k: int) -> str:
        c = self.containers[k]
        return "{}:{}.{}.{}".format(c["repo"], *c["tag"])

    def deployment(self) -> str:
        lines = [
            f"# {self.name}: owned by team {self.team}",
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata:",
            f"  name: {self.name}",
            "  labels:",
            f"    app: {self.name}",
            f"    team: {self.team}",
            "spec:",
            f"  replicas: {self.replicas}",
            "  revisionHistoryLimit: 5",
            "  selector:",
            "    matchLabels:",
            f"      app: {self.name}",
            "  template:",
            "    metadata:",
            "      labels:",
            f"        app: {self.name}",
            f"        tier: {self.tier}",
            "    spec:",
            "      containers:",
        ]
        for k, c in enumerate(self.containers):
            lines += [
                f"        - name: {c['name']}",
                f"          image: {self.image(k)}",
                "          ports:",
                f"            - containerPort: {c['port']}",
                "          env:",
            ]
            for key, value in c["env"].items():
                lines += [f"            - name: {key}", f'              value: "{value}"']
            lines += [
                "          resources:",
                "            requests:",
                f"              cpu: {c['cpu']}m",
                f"              memory: {c['mem']}Mi",
                "            limits:",
                f"              memory: {c['mem'] * 2}Mi",
                "          readinessProbe:",
                "            httpGet:",
                "              path: /healthz",
                f"              port: {c['port']}",
            ]
        return "\n".join(lines) + "\n"

    def service(self) -> str:
        return (
            "apiVersion: v1\n"
            "kind: Service\n"
            "metadata:\n"
            f"  name: {self.name}\n"
            "spec:\n"
            "  selector:\n"
            f"    app: {self.name}\n"
            "  ports:\n"
            f"    - port: {self.svc_port}\n"
            f"      targetPort: {self.containers[0]['port']}\n"
        )

    def kustomization(self) -> str:
        return (
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            f"namespace: {self.team}\n"
            "resources:\n"
            "  - deployment.yaml\n"
            "  - service.yaml\n"
            "labels:\n"
            "  - pairs:\n"
            f"      team: {self.team}\n"
            f"      tier: {self.tier}\n"
        )

    def files(self):
        base = f"apps/{self.name}/"
        return [
            (base + "deployment.yaml", self.deployment()),
            (base + "service.yaml", self.service()),
            (base + "kustomization.yaml", self.kustomization()),
        ]

    def random_change(self, rng: random.Random) -> tuple[str, str, str]:
        """Mutates one aspect; returns (path, content, subject)."""
        base = f"apps/{self.name}/"
        r = rng.random()
        k = rng.randrange(len(self.containers))
        c = self.containers[k]
        if r < 0.45:
            t = c["tag"]
            if rng.random() < 0.8:
                t[2] += 1
            else:
                t[1] += 1
                t[2] = 0
            return base + "deployment.yaml", self.deployment(), f"{self.name}: bump {c['name']} to {'.'.join(map(str, t))}"
        if r < 0.60:
            self.replicas = max(1, self.replicas + rng.choice([-1, 1, 2]))
            return base + "deployment.yaml", self.deployment(), f"{self.name}: scale to {self.replicas} replicas"
        if r < 0.80:
            key = rng.choice(list(c["env"]))
            if key == "LOG_LEVEL":
                c["env"][key] = rng.choice(["debug", "info", "warn"])
            elif key == "POOL_SIZE":
                c["env"][key] = str(rng.choice([4, 8, 16, 32]))
            else:
                c["env"][key] = rng.choice(["", "new-checkout", "fast-path", "new-checkout,fast-path"])
            return base + "deployment.yaml", self.deployment(), f"{self.name}: set {key}={c['env'][key]}"
        if r < 0.90:
            c["mem"] = rng.choice([128, 256, 512, 1024, 2048])
            return base + "deployment.yaml", self.deployment(), f"{self.name}: memory request {c['mem']}Mi"
        if r < 0.95:
            self.tier = rng.choice(["backend", "frontend", "batch"])
            return base + "kustomization.yaml", self.kustomization(), f"{self.name}: tier {self.tier}"
        self.svc_port = rng.choice([80, 8080, 443])
        return base + "service.yaml", self.service(), f"{self.name}: service port {self.svc_port}"


def config_yaml(apps) -> str:
    out = [
        "# revertbot config for the synthetic infra repo (bench/synth-infra.py)",
        "version: 1",
        "repo:",
        "  remote: origin",
        "  branch: main",
        "apps:",
    ]
    for a in apps:
        out += [
            f"  - name: {a.name}",
            f'    paths: ["apps/{a.name}/**"]',
            f"    argocd: {{ app: {a.name} }}",
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

    def commit(self, mark: int, when: int, author, message: str, changes):
        name, email = author
        w = self.out.write
        w(b"commit refs/heads/main\n")
        w(b"mark :%d\n" % mark)
        ident = f"{name} <{email}> {when} +0000\n".encode()
        w(b"author " + ident)
        w(b"committer " + ident)
        self.data(message + "\n")
        if mark > 1:
            w(b"from :%d\n" % (mark - 1))
        for path, content in changes:
            w(f"M 100644 inline {path}\n".encode())
            self.data(content)
        w(b"\n")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--commits", type=int, default=100_000)
    ap.add_argument("--apps", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bench-app", type=int, default=42, help="index of the app with the planted bad deploy")
    ap.add_argument("--lkg-back", type=int, default=200, help="LKG is this many commits before the tip")
    ap.add_argument("--deployed-back", type=int, default=10, help="deployed revision is this many commits before the tip")
    ap.add_argument("--culprits", type=int, default=3)
    ap.add_argument("--no-repack", action="store_true", help="keep fast-import's packs as they are")
    args = ap.parse_args()
    if not (args.deployed_back < args.lkg_back < args.commits - 1):
        ap.error("need deployed-back < lkg-back < commits - 1")
    if args.lkg_back - args.deployed_back <= args.culprits:
        ap.error("the LKG..deployed window must be longer than --culprits")

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
    apps = [App(i, rng, containers=2 if i == args.bench_app else None) for i in range(args.apps)]
    bench = apps[args.bench_app]
    # Skewed activity: weight ~ 1/rank^0.8 over a seeded permutation.
    order = list(range(args.apps))
    rng.shuffle(order)
    weights = [0.0] * args.apps
    for rank, i in enumerate(order):
        weights[i] = 1.0 / (rank + 1) ** 0.8
    cum = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)

    n = args.commits
    tip_mark = n
    lkg_mark = n - args.lkg_back
    deployed_mark = n - args.deployed_back
    # Culprits spread evenly inside (lkg, deployed].
    span = deployed_mark - lkg_mark
    culprit_marks = [lkg_mark + (span * (j + 1)) // (args.culprits + 1) for j in range(args.culprits)]
    culprit_marks[-1] = max(culprit_marks[-1], lkg_mark + 1)
    lkg_images: list[str] = []

    fi = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done", f"--export-marks={top}/marks"],
        cwd=remote,
        stdin=subprocess.PIPE,
        env=env,
        bufsize=1 << 20,
    )
    s = Stream(fi.stdin)
    when = EPOCH
    initial = [(".revertbot.yaml", config_yaml(apps))]
    for a in apps:
        initial += a.files()
    s.commit(1, when, AUTHORS[0], "Initial import of the infra repo", initial)
    bisect = __import__("bisect").bisect_left
    culprit_no = 0
    t_gen = time.monotonic()
    for mark in range(2, n + 1):
        when += 240 + rng.randrange(240)
        author = AUTHORS[rng.randrange(len(AUTHORS))]
        if mark in culprit_marks:
            c = culprit_no
            culprit_no += 1
            if c % 3 == 0:
                t = bench.containers[0]["tag"]
                t[1] += 1
                t[2] = 0
                path, content = f"apps/{bench.name}/deployment.yaml", bench.deployment()
                subject = f"{bench.name}: roll out {bench.image(0)}"
            elif c % 3 == 1:
                bench.containers[0]["env"]["FEATURE_FLAGS"] = "canary-checkout"  # a value random changes never use
                path, content = f"apps/{bench.name}/deployment.yaml", bench.deployment()
                subject = f"{bench.name}: enable canary-checkout"
            else:
                bench.containers[1]["tag"][2] += 1
                path, content = f"apps/{bench.name}/deployment.yaml", bench.deployment()
                subject = f"{bench.name}: bump worker to {bench.image(1)}"
            s.commit(mark, when, author, subject, [(path, content)])
            continue
        while True:
            i = bisect(cum, rng.random() * acc)
            i = min(i, args.apps - 1)
            if not (i == args.bench_app and mark > lkg_mark):
                break
        path, content, subject = apps[i].random_change(rng)
        s.commit(mark, when, author, subject, [(path, content)])
        if mark == lkg_mark:
            lkg_images = [bench.image(k) for k in range(len(bench.containers))]
        if mark % 20000 == 0:
            print(f"  {mark} commits streamed ({time.monotonic() - t_gen:.1f}s)", file=sys.stderr)
    if not lkg_images:
        lkg_images = [bench.image(k) for k in range(len(bench.containers))]
    fi.stdin.write(b"done\n")
    fi.stdin.close()
    if fi.wait() != 0:
        print("git fast-import failed", file=sys.stderr)
        return 1
    t_import = time.monotonic()
    print(f"fast-import: {n} commits, {args.apps} apps in {t_import - t0:.1f}s", file=sys.stderr)

    if not args.no_repack:
        run(["git", "repack", "-a", "-d", "-q", "--window=10", "--depth=50"], cwd=remote, env=env)
        run(["git", "prune-packed"], cwd=remote, env=env)
    run(["git", "config", "receive.denyNonFastForwards", "true"], cwd=remote, env=env)
    t_repack = time.monotonic()
    print(f"repack: {t_repack - t_import:.1f}s", file=sys.stderr)

    run(["git", "clone", "-q", remote, infra], env=env)
    for key, value in [("user.name", "revertbot bench"), ("user.email", "bench@revertbot.example")]:
        run(["git", "config", key, value], cwd=infra, env=env)
    t_clone = time.monotonic()
    print(f"clone: {t_clone - t_repack:.1f}s", file=sys.stderr)

    marks = {}
    with open(os.path.join(top, "marks")) as f:
        for line in f:
            m, sha = line.split()
            marks[int(m[1:])] = sha
    pack_bytes = sum(
        os.path.getsize(os.path.join(remote, "objects/pack", p))
        for p in os.listdir(os.path.join(remote, "objects/pack"))
        if p.endswith(".pack")
    )
    with open(os.path.join(top, "bench.env"), "w") as f:
        f.write("# generated by bench/synth-infra.py " + " ".join(sys.argv[1:]) + "\n")
        f.write(f"SYNTH_DIR={top}\n")
        f.write(f"REMOTE={remote}\nINFRA={infra}\n")
        f.write(f"COMMITS={n}\nAPPS={args.apps}\n")
        f.write(f"APP={bench.name}\n")
        f.write(f"TIP={marks[tip_mark]}\n")
        f.write(f"DEPLOYED={marks[deployed_mark]}\n")
        f.write(f"LKG={marks[lkg_mark]}\n")
        f.write("CULPRITS='" + " ".join(marks[m] for m in reversed(culprit_marks)) + "'\n")
        f.write("LKG_IMAGES='" + " ".join(lkg_images) + "'\n")
        f.write("LKG_PINNED='" + " ".join(f"{i}@{digest_of(i)}" for i in lkg_images) + "'\n")
        f.write(f"REMOTE_PACK_BYTES={pack_bytes}\n")
    print(f"total: {time.monotonic() - t0:.1f}s; remote pack {pack_bytes / 1e6:.1f} MB; see {top}/bench.env", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
