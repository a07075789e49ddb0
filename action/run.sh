#!/usr/bin/env bash
# Runs one revertbot command for the action. Every input arrives as an
# environment variable (RB_INPUT_*, mapped in action.yml) and becomes one
# element of a bash array: no eval, no word splitting, no globbing of
# untrusted values, and values are bound to their option (`--app=VALUE`) so
# one that starts with `-` cannot become a flag. Step outputs, the job
# summary and annotations are written by revertbot itself.
set -euo pipefail

die() {
  printf '::error title=revertbot::%s\n' "$*" >&2
  exit 2
}

input() {
  local name="RB_INPUT_$1"
  printf '%s' "${!name:-}"
}

# A field of the event payload ($GITHUB_EVENT_PATH), empty when absent.
event_field() {
  local path="${GITHUB_EVENT_PATH:-}"
  [ -n "$path" ] && [ -f "$path" ] || return 0
  command -v jq >/dev/null 2>&1 || die "jq is needed to read the event payload"
  jq -r "$1 // empty | strings" "$path"
}

is_sha() {
  [[ "$1" =~ ^[0-9a-fA-F]{7,64}$ ]]
}

# On stderr, like every workflow command here: stdout is the report alone.
mask() {
  local line
  [ -n "$1" ] || return 0
  # Each line of a multi-line secret is masked on its own.
  while IFS= read -r line; do
    [ -z "$line" ] || printf '::add-mask::%s\n' "$line" >&2
  done <<<"$1"
}

command_name="$(input COMMAND)"
command_name="${command_name:-check}"
case "$command_name" in
  check | plan | revert | record | preflight | drill) ;;
  approve | reject) die "command \`$command_name\` is not available in this version of revertbot yet" ;;
  *) die "unknown command \`$command_name\`: use check, plan, revert, record, preflight or drill" ;;
esac

dry_run="$(input DRY_RUN)"
case "${dry_run:-false}" in
  true) dry_run=true ;;
  false) dry_run=false ;;
  *) die "dry-run must be true or false, got \`$dry_run\`" ;;
esac

app="$(input APP)"
if [ -z "$app" ] && [ "${GITHUB_EVENT_NAME:-}" = repository_dispatch ]; then
  # Alert-triggered runs name the app in the dispatch payload.
  app="$(event_field .client_payload.app)"
fi
if [ -z "$app" ] && [ "${GITHUB_EVENT_NAME:-}" = workflow_dispatch ]; then
  app="$(event_field .inputs.app)"
fi

github_token="$(input GITHUB_TOKEN)"
argocd_token="$(input ARGOCD_TOKEN)"
mask "$github_token"
mask "$argocd_token"
# Secrets reach revertbot under the ecosystem's names, and only there.
unset RB_INPUT_GITHUB_TOKEN RB_INPUT_ARGOCD_TOKEN
[ -z "$github_token" ] || export GITHUB_TOKEN="$github_token"
[ -z "$argocd_token" ] || export ARGOCD_AUTH_TOKEN="$argocd_token"
argocd_server="$(input ARGOCD_SERVER)"
[ -z "$argocd_server" ] || export ARGOCD_SERVER="$argocd_server"

argv=()
config="$(input CONFIG)"
[ -z "$config" ] || argv+=("--config=$config")
repo="$(input REPO)"
[ -z "$repo" ] || argv+=("--repo=$repo")
output="$(input OUTPUT)"
case "${output:-text}" in
  text | json) argv+=("--output=${output:-text}") ;;
  *) die "output must be text or json, got \`$output\`" ;;
esac

need_app() {
  [ -n "$app" ] || die "command \`$command_name\` needs the app input"
}

commits=()
commit_input="$(input COMMIT)"
if [ -n "$commit_input" ]; then
  # SHAs separated by spaces, commas or new lines; read -a does not glob.
  IFS=$' \t\n,' read -r -d '' -a commits <<<"$commit_input" || true
  for c in "${commits[@]}"; do
    is_sha "$c" || die "commit must be commit SHAs, got \`$c\`"
  done
fi

deployed="$(input DEPLOYED)"
[ -z "$deployed" ] || is_sha "$deployed" || die "deployed must be a commit SHA, got \`$deployed\`"

if [ "$command_name" = revert ] && [ "$dry_run" = true ]; then
  # A revert that changes nothing is a plan.
  [ ${#commits[@]} -eq 0 ] || die "dry-run with commit is not supported: plan searches the culprits itself"
  echo "dry-run: running \`plan\` instead of \`revert\` (changes nothing)" >&2
  command_name=plan
fi

argv+=("$command_name")
case "$command_name" in
  check)
    [ -z "$app" ] || argv+=("--app=$app")
    [ "$dry_run" = false ] || argv+=(--dry-run)
    ;;
  plan)
    need_app
    argv+=("--app=$app")
    [ -z "$deployed" ] || argv+=("--deployed=$deployed")
    ;;
  revert)
    need_app
    argv+=("--app=$app")
    mode="$(input MODE)"
    case "${mode:-push}" in
      push | pr) argv+=("--mode=${mode:-push}") ;;
      *) die "mode must be push or pr, got \`$mode\`" ;;
    esac
    [ -z "$deployed" ] || argv+=("--deployed=$deployed")
    for c in "${commits[@]}"; do
      argv+=("--commit=$c")
    done
    reason="$(input REASON)"
    [ -z "$reason" ] || argv+=("--reason=$reason")
    ;;
  record)
    need_app
    argv+=("--app=$app")
    ;;
  preflight)
    base="$(input BASE)"
    head="$(input HEAD)"
    # On pull_request: the PR's base and head commits from the payload.
    [ -n "$base" ] || base="$(event_field .pull_request.base.sha)"
    [ -n "$head" ] || head="$(event_field .pull_request.head.sha)"
    [ -n "$base" ] || die "preflight needs the base input (or a pull_request event)"
    [ -n "$head" ] || die "preflight needs the head input (or a pull_request event)"
    argv+=("--base=$base" "--head=$head")
    ;;
  drill)
    [ -z "$app" ] || argv+=("--app=$app")
    ;;
esac

# Extra arguments: one per line, each passed as it is.
args_input="$(input ARGS)"
if [ -n "$args_input" ]; then
  while IFS= read -r line; do
    [ -z "$line" ] || argv+=("$line")
  done <<<"$args_input"
fi

bin="$(input BIN)"
bin="${bin:+$bin/}revertbot"
# %q keeps the whole command on one line, so no value can start a
# workflow command in the log.
printf 'running: revertbot' >&2
printf ' %q' "${argv[@]}" >&2
printf '\n' >&2
exec "$bin" "${argv[@]}"
