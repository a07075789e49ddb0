#!/usr/bin/env bash
# Creates a sample infra repo with a bad deploy, for trying revertbot:
#   <dir>/remote.git   a bare remote (what GitHub would be)
#   <dir>/infra        a checkout with .revertbot.yaml and two apps
# History (oldest first):
#   good     guestbook runs ghcr.io/acme/guestbook:v1 (healthy: the LKG)
#   billing  an unrelated change to another app
#   bad      guestbook moves to :v2 and drops its readiness probe (deployed)
#   later    another billing change, landed after the deploy
# Prints the variables the demo uses (GOOD, BAD, DIGEST) as shell lines.
set -euo pipefail

dir=${1:?usage: scripts/sample-infra.sh DIR}
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Sam Deployer" GIT_AUTHOR_EMAIL="sam@example.com"
export GIT_COMMITTER_NAME="Sam Deployer" GIT_COMMITTER_EMAIL="sam@example.com"
n=0
commit() {
  n=$((n + 1))
  export GIT_AUTHOR_DATE="2026-11-2${n}T10:00:00Z" GIT_COMMITTER_DATE="2026-11-2${n}T10:00:00Z"
  git -C "$dir/infra" add -A
  git -C "$dir/infra" commit -q -m "$1"
  git -C "$dir/infra" rev-parse HEAD
}

git init -q --bare -b main "$dir/remote.git"
git init -q -b main "$dir/infra"
git -C "$dir/infra" remote add origin "$dir/remote.git"
mkdir -p "$dir/infra/apps/guestbook" "$dir/infra/apps/billing"

cat > "$dir/infra/.revertbot.yaml" <<'YAML'
version: 1
repo:
  remote: origin
  branch: main
apps:
  - name: guestbook
    paths: ["apps/guestbook/**"]
    argocd: { app: guestbook }
    policy:
      critical: push
  - name: billing
    paths: ["apps/billing/**"]
    argocd: { app: billing }
YAML

cat > "$dir/infra/apps/guestbook/deployment.yaml" <<'YAML'
# The guestbook frontend.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
  labels: {app: guestbook}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: guestbook
  template:
    metadata:
      labels:
        app: guestbook
    spec:
      containers:
        - name: guestbook-ui
          image: ghcr.io/acme/guestbook:v1 # {"$imagepolicy": "flux-system:guestbook"}
          ports:
            - containerPort: 80
          readinessProbe:
            httpGet: {path: /healthz, port: 80}
YAML
cat > "$dir/infra/apps/guestbook/service.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: guestbook-ui
spec:
  ports:
    - port: 80
      targetPort: 80
  selector:
    app: guestbook
YAML
cat > "$dir/infra/apps/billing/deployment.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: billing
spec:
  replicas: 1
  selector:
    matchLabels: {app: billing}
  template:
    metadata:
      labels: {app: billing}
    spec:
      containers:
        - name: billing
          image: "registry.example.com:5000/acme/billing:2.3.0"
YAML
good=$(commit "guestbook: first release, v1")

sed -i 's/replicas: 1/replicas: 3/' "$dir/infra/apps/billing/deployment.yaml"
commit "billing: scale to 3" >/dev/null

sed -i 's/guestbook:v1/guestbook:v2/' "$dir/infra/apps/guestbook/deployment.yaml"
sed -i '/readinessProbe:/,+1d' "$dir/infra/apps/guestbook/deployment.yaml"
bad=$(commit "guestbook: roll out v2")

sed -i 's/2.3.0/2.3.1/' "$dir/infra/apps/billing/deployment.yaml"
commit "billing: patch release 2.3.1" >/dev/null

git -C "$dir/infra" push -q origin main

# The digest guestbook:v1 resolved to while healthy (a real digest would come
# from the registry or the running pods; this one is derived, stable).
digest="sha256:$(printf 'ghcr.io/acme/guestbook:v1' | sha256sum | cut -d' ' -f1)"
echo "GOOD=$good"
echo "BAD=$bad"
echo "DIGEST=$digest"
