#!/usr/bin/env bash
# real_docker.sh - part of `make deploy-real`: the repository's Dockerfile built and run by a real
# Docker daemon (Debian's docker.io: dockerd, containerd, runc), which tests/pkg/docker.sh can only
# imitate. It starts a private dockerd (its own socket, data and exec roots under the work
# directory, no iptables rules, no default bridge), makes the base image debian:12-slim locally
# (debootstrap from the Debian mirror, `docker import`: no registry is reachable from the test
# machines), builds the image, and checks what the image promises: /ready answers through a
# published port, Docker's own HEALTHCHECK state turns healthy (and unhealthy for a replica that
# cannot reach its upstream), the server runs as the non-root user edgeflag, the store survives a
# container restart and a new container on the same volume, and HTTPS is probed by the same check.
# Needs root and the Debian mirror; not part of `make test` (minutes, and a daemon).
# Environment: EF_REAL_DIR (work directory, kept between runs: base root, Docker's data),
# EF_REAL_DOCKER_STORAGE (overlay2 by default; vfs where overlay cannot mount),
# EF_REAL_DOCKER_CACHE=1 (let `docker build` reuse its layer cache; by default every step runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/pkg/real_lib.sh
pkg_need dockerd containerd runc debootstrap curl openssl python3
docker=/usr/bin/docker # Debian's client: its classic builder needs no buildx plugin

d=$real_work/docker
mkdir -p "$d/data" "$d/exec"
export DOCKER_HOST=unix://$d/docker.sock
dockerd_pid=
names=(efreal efreal-replica efreal-tls)
cleanup() {
  if [ -n "$dockerd_pid" ]; then
    $docker rm -f "${names[@]}" >/dev/null 2>&1 || true
    $docker volume rm efreal-data >/dev/null 2>&1 || true
    $docker network rm efreal-net >/dev/null 2>&1 || true
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
    # what dockerd leaves mounted when it exits (its default network namespace)
    findmnt -rno TARGET | grep "^$d/" | sort -r | while read -r t; do umount "$t" || true; done
  fi
  rm -rf "$d/pki"
}
trap cleanup EXIT

real_step "a private Docker daemon (socket $d/docker.sock)"
storage=${EF_REAL_DOCKER_STORAGE:-overlay2}
dockerd --data-root "$d/data" --exec-root "$d/exec" -H "$DOCKER_HOST" --pidfile "$d/dockerd.pid" \
  --iptables=false --ip6tables=false --bridge=none --storage-driver "$storage" \
  --containerd-namespace edgeflag-real --containerd-plugins-namespace edgeflag-real-plugins >"$d/dockerd.log" 2>&1 &
dockerd_pid=$!
if ! real_wait 60 $docker info; then
  tail -20 "$d/dockerd.log"
  echo "dockerd did not start (log: $d/dockerd.log)" >&2
  exit 1
fi
$docker version --format '  client {{.Client.Version}}, daemon {{.Server.Version}}'
echo "  storage driver: $($docker info --format '{{.Driver}}'), cgroup v$($docker info --format '{{.CgroupVersion}}')"

real_step "the base image debian:12-slim, made locally"
base=$(real_rootfs)
# As Debian's slim image: no documentation or man pages (dpkg excludes them from later installs
# too), no package lists; the main, updates and security suites.
slim=$d/slim
rm -rf "$slim"
cp -a "$base" "$slim"
rm -rf "$slim"/usr/share/doc/* "$slim"/usr/share/man/* "$slim"/var/lib/apt/lists/* "$slim"/var/cache/apt/*.bin \
  "$slim"/var/cache/apt/archives/*.deb "$slim"/etc/apt/sources.list
mkdir -p "$slim/etc/dpkg/dpkg.cfg.d"
printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\n' \
  >"$slim/etc/dpkg/dpkg.cfg.d/docker"
cat >"$slim/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $real_mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${real_mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
tar -C "$slim" --numeric-owner -c . | $docker import --change 'CMD ["bash"]' - debian:12-slim >/dev/null
rm -rf "$slim"
pkg_check "debian:12-slim imported ($($docker image inspect -f '{{.Size}}' debian:12-slim | awk '{printf "%.0f MB", $1/1e6}'))" \
  sh -c "$docker run --rm --network none debian:12-slim cat /etc/debian_version | grep -q '^12\.'"

real_step "docker build of the repository's Dockerfile"
# The build stage's apt-get reaches the mirror through the host's network: this daemon sets up
# no NAT for its bridges (no iptables).
cache=--no-cache
[ "${EF_REAL_DOCKER_CACHE:-0}" = 1 ] && cache=
t0=$SECONDS
if ! $docker build $cache --network host -t edgeflag:deploy-real . >"$d/build.log" 2>&1; then
  tail -40 "$d/build.log"
  echo "docker build failed (whole log: $d/build.log)" >&2
  exit 1
fi
echo "  built in $((SECONDS - t0)) s (log: $d/build.log)"
pkg_check "image edgeflag:deploy-real: $($docker image inspect -f '{{.Size}}' edgeflag:deploy-real | awk '{printf "%.0f MB", $1/1e6}'), USER $($docker image inspect -f '{{.Config.User}}' edgeflag:deploy-real)" \
  test "$($docker image inspect -f '{{.Config.User}}' edgeflag:deploy-real)" = edgeflag
pkg_check "the image holds no compiler" sh -c "! $docker run --rm --network none --entrypoint sh edgeflag:deploy-real -c 'command -v cc gcc'"

real_step "docker run with the image's defaults, a published port and a named volume"
$docker network create efreal-net >/dev/null
$docker volume create efreal-data >/dev/null
port=$(real_free_port)
run_primary() {
  $docker run -d --name efreal --network efreal-net -p "127.0.0.1:$port:8080" -v efreal-data:/var/lib/edgeflag \
    edgeflag:deploy-real >/dev/null
}
run_primary
url=http://127.0.0.1:$port
# Started now, checked later: a replica whose upstream does not answer (its /ready is 503), and
# the image serving HTTPS with a certificate mounted read-only.
$docker run -d --name efreal-replica --network efreal-net -e EDGEFLAG_UPSTREAM=http://192.0.2.1:8080 \
  edgeflag:deploy-real >/dev/null
real_pki "$d/pki"
chmod 0644 "$d/pki"/server.key # read by the container's user edgeflag (uid 10001)
tls_port=$(real_free_port)
$docker run -d --name efreal-tls --network efreal-net -p "127.0.0.1:$tls_port:8080" -v "$d/pki:/tls:ro" \
  -e EDGEFLAG_TLS_CERT=/tls/server.crt -e EDGEFLAG_TLS_KEY=/tls/server.key edgeflag:deploy-real >/dev/null

pkg_check "GET /ready through the published port answers 200" real_wait 30 curl -fsS "$url/ready"
echo "     $(curl -sS "$url/ready")"
health() { $docker inspect -f '{{.State.Health.Status}}' "$1"; }
t0=$SECONDS
pkg_check "Docker runs the HEALTHCHECK and reports the container healthy" real_wait 60 sh -c "test \"\$($docker inspect -f '{{.State.Health.Status}}' efreal)\" = healthy"
echo "     health: $(health efreal) after $((SECONDS - t0)) s; last probe: $($docker inspect -f '{{with index .State.Health.Log 0}}exit {{.ExitCode}}{{end}}' efreal)"
pid=$($docker inspect -f '{{.State.Pid}}' efreal)
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
pkg_check "the server's process (host pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline")) runs as uid $uid, not root" test "$uid" -ne 0
pkg_check "... which is the image's user edgeflag ($($docker exec efreal id))" test "$($docker exec efreal id -un)" = edgeflag
pkg_check "the store is in the volume, owned by edgeflag" \
  sh -c "$docker run --rm --network none -v efreal-data:/v --entrypoint stat edgeflag:deploy-real -c %U /v/edgeflag.db | grep -qx edgeflag"
pkg_check "the server cannot write outside the volume (/usr is root's)" \
  sh -c "! $docker exec efreal sh -c 'echo x > /usr/local/bin/x' 2>/dev/null"

real_step "the volume's data across a restart and a new container"
has_flag() { curl -fsS -o /dev/null "$url/api/v1/namespaces/default/flags/survives"; }
pkg_flag "$url" survives
pkg_check "a flag written through the API" has_flag
$docker restart efreal >/dev/null
pkg_check "docker restart: /ready again" real_wait 30 curl -fsS "$url/ready"
pkg_check "... and the flag is still there" has_flag
$docker rm -f efreal >/dev/null
run_primary
pkg_check "docker rm + docker run on the same volume: /ready" real_wait 30 curl -fsS "$url/ready"
pkg_check "... and the flag is still there" has_flag

real_step "the HEALTHCHECK on HTTPS, and failing"
pkg_check "HTTPS: /ready with the CA through the published port" \
  real_wait 30 curl -fsS --cacert "$d/pki/ca.crt" "https://localhost:$tls_port/ready"
pkg_check "HTTPS: Docker reports the container healthy (the check's second probe)" \
  real_wait 60 sh -c "test \"\$($docker inspect -f '{{.State.Health.Status}}' efreal-tls)\" = healthy"
echo "     health: $(health efreal-tls)"
pkg_check "a replica that cannot reach its upstream: Docker reports it unhealthy" \
  real_wait 90 sh -c "test \"\$($docker inspect -f '{{.State.Health.Status}}' efreal-replica)\" = unhealthy"
echo "     health: $(health efreal-replica); /ready inside: $($docker exec efreal-replica curl -sS http://127.0.0.1:8080/ready)"

pkg_done "real Docker"
