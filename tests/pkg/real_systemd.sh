#!/usr/bin/env bash
# real_systemd.sh - part of `make deploy-real`: the Debian package's systemd unit run by a real
# systemd, which tests/pkg/deploy_shim.py can only imitate. It builds the packages (make deb),
# installs them with apt-get into a Debian 12 root made by debootstrap (systemd, dbus, curl added),
# boots that root with `systemd-nspawn -b` (private network: the unit's 127.0.0.1:8080 is the
# container's own), and checks from inside, with nsenter: the unit was enabled by the package and
# started at boot, `systemctl stop|start` work, the server runs as the user edgeflag with its store
# under /var/lib/edgeflag, ProtectSystem=strict holds (root itself cannot write /usr or /etc in
# the service's mount namespace, while it can outside it), `systemd-analyze security`'s exposure,
# and `systemctl reload` reloading the HTTPS certificate and client CA (SIGHUP, same process).
# Needs root and the Debian mirror; not part of `make test` (minutes, and a booted container).
# Environment: EF_REAL_DIR (work directory, kept between runs: the base roots).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/pkg/real_lib.sh
pkg_need systemd-nspawn nsenter debootstrap openssl python3 dpkg-buildpackage

m=$real_work/nspawn
nspawn_pid=
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill "$nspawn_pid" 2>/dev/null || true # nspawn asks the container's systemd to power off
    for _ in $(seq 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  rm -rf "$m/root" "$m/pki"
}
trap cleanup EXIT

real_step "the Debian packages (make deb, without lintian: tests/pkg/deb.sh runs it)"
LINTIAN=0 scripts/build-deb.sh build/deb >"$real_work/deb.log" 2>&1 ||
  { tail -30 "$real_work/deb.log"; echo "make deb failed (log: $real_work/deb.log)" >&2; exit 1; }
debs=(build/deb/edgeflag_*_amd64.deb build/deb/libedgeflag0_*_amd64.deb)
ls -1 "${debs[@]}" | sed 's/^/  /'

real_step "a Debian 12 root with systemd, the packages installed by apt-get"
sysbase=$(real_rootfs systemd systemd-sysv dbus curl ca-certificates)
rm -rf "$m"
mkdir -p "$m"
cp -a "$sysbase" "$m/root"
cp "${debs[@]}" "$m/root/tmp/"
real_chroot "$m/root" sh -c 'apt-get install -y -qq --no-install-recommends /tmp/*.deb' >"$m/apt.log" 2>&1 ||
  { tail -30 "$m/apt.log"; echo "apt-get install of the packages failed (log: $m/apt.log)" >&2; exit 1; }
rm -f "$m/root"/tmp/*.deb
echo deploy-real >"$m/root/etc/hostname"
pkg_check "apt-get installed edgeflag $(chroot "$m/root" dpkg-query -W -f '${Version}' edgeflag) and its library dependencies" \
  chroot "$m/root" /usr/bin/edgeflag --version

real_step "systemd-nspawn -b: the root boots with systemd as its init"
systemd-nspawn -D "$m/root" -b --private-network --register=no --keep-unit -M edgeflag-real \
  --console=pipe >"$m/boot.log" 2>&1 &
nspawn_pid=$!
# the container's PID 1: nspawn's child once it has become systemd
leader=
for _ in $(seq 300); do
  leader=$(pgrep -P "$nspawn_pid" -x systemd | head -1) && [ -n "$leader" ] && break
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$leader" ]; then
  cat "$m/boot.log"
  echo "systemd-nspawn did not start the container" >&2
  exit 1
fi
ct() { nsenter -t "$leader" -a "$@"; } # a command inside the booted container
# until its bus answers (starting, then running or degraded)
state=
for _ in $(seq 240); do
  state=$(ct systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 0.5
done
echo "  PID 1 in the container: $(ct cat /proc/1/comm), $(ct systemctl --version | head -1); system state: $state"
pkg_check "the system booted (running)" test "$state" = running
[ "$state" = running ] || ct systemctl --failed --no-pager || true

real_step "the edgeflag unit under systemd"
pkg_check "enabled by the package (systemctl is-enabled)" test "$(ct systemctl is-enabled edgeflag)" = enabled
is_active() { test "$(ct systemctl is-active edgeflag)" = active; }
pkg_check "started at boot (systemctl is-active)" real_wait 20 is_active
ct systemctl stop edgeflag
pkg_check "systemctl stop: inactive" test "$(ct systemctl is-active edgeflag || true)" = inactive
ct systemctl start edgeflag
pkg_check "systemctl start: active" is_active
pkg_check "/ready answers on the unit's 127.0.0.1:8080" real_wait 20 ct curl -fsS http://127.0.0.1:8080/ready
ct systemctl status edgeflag --no-pager --lines=0 | sed 's/^/     /'
pid=$(ct systemctl show -p MainPID --value edgeflag)
pkg_check "the main process ($pid) runs as the user edgeflag (uid $(ct stat -c %u /proc/"$pid"))" \
  test "$(ct stat -c %U /proc/"$pid")" = edgeflag
ct curl -fsS -o /dev/null -X POST http://127.0.0.1:8080/api/v1/namespaces/default/flags \
  -d '{"key":"under-systemd","name":"under systemd","type":"BOOLEAN_FLAG_TYPE","enabled":true}'
pkg_check "a flag written; the store is /var/lib/edgeflag/edgeflag.db, owned by edgeflag" \
  test "$(ct stat -c %U /var/lib/edgeflag/edgeflag.db)" = edgeflag
ct systemctl restart edgeflag
pkg_check "systemctl restart: the flag is still there" \
  real_wait 20 ct curl -fsS -o /dev/null http://127.0.0.1:8080/api/v1/namespaces/default/flags/under-systemd

real_step "ProtectSystem=strict, seen from the service's own mount namespace"
pid=$(ct systemctl show -p MainPID --value edgeflag)
svc() { ct nsenter -t "$pid" -m "$@"; } # as root, in the service's mount namespace
for dir in /usr /etc; do
  msg=$(svc sh -c "touch $dir/edgeflag-probe" 2>&1) && rc=0 || rc=$?
  refused_ro() { [ "$rc" -ne 0 ] && grep -q 'Read-only file system' <<<"$msg"; }
  pkg_check "root cannot create a file in $dir there: ${msg:-it could}" refused_ro
  echo "     $dir is mounted $(svc findmnt -no OPTIONS --target "$dir" | cut -d, -f1) in the service, $(ct findmnt -no OPTIONS --target "$dir" | cut -d, -f1) outside it"
done
pkg_check "... while outside the service root can (the container itself is writable)" \
  ct sh -c 'touch /usr/edgeflag-probe /etc/edgeflag-probe && rm /usr/edgeflag-probe /etc/edgeflag-probe'
pkg_check "the state directory is writable there" svc sh -c 'touch /var/lib/edgeflag/probe && rm /var/lib/edgeflag/probe'
exposure=$(ct systemd-analyze security edgeflag --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for edgeflag.service: \([0-9.]*\) \(.*\)/\1 \2/p')
pkg_check "systemd-analyze security edgeflag: exposure ${exposure:-?} (<= 2.0)" \
  awk -v e="${exposure%% *}" 'BEGIN{exit !(e != "" && e <= 2.0)}'

real_step "HTTPS with client certificates, and systemctl reload (SIGHUP)"
real_pki "$m/pki"
t=$m/root/etc/edgeflag/tls
mkdir -p "$t"
install -m 0644 "$m/pki/server.crt" "$t/server.crt"
install -m 0640 -g "$(chroot "$m/root" getent group edgeflag | cut -d: -f3)" "$m/pki/server.key" "$t/server.key"
install -m 0644 "$m/pki/ca.crt" "$t/client-ca.crt"
install -m 0644 "$m/pki/ca.crt" "$m/pki/ca2.crt" "$m/pki/client.crt" "$m/pki/client.key" "$m/pki/client2.crt" \
  "$m/pki/client2.key" "$m/root/root/"
printf 'EDGEFLAG_TLS_CERT=/etc/edgeflag/tls/server.crt\nEDGEFLAG_TLS_KEY=/etc/edgeflag/tls/server.key\nEDGEFLAG_TLS_CLIENT_CA=/etc/edgeflag/tls/client-ca.crt\n' \
  >"$m/root/etc/edgeflag/edgeflag.env"
chmod 0640 "$m/root/etc/edgeflag/edgeflag.env"
ct systemctl restart edgeflag
as() { # client: GET /ready over HTTPS with that client certificate
  ct curl -fsS -o /dev/null --cacert /root/ca.crt --cert "/root/$1.crt" --key "/root/$1.key" https://localhost:8080/ready
}
pkg_check "HTTPS /ready with a client certificate of the client CA" real_wait 20 as client
refused() { ! as "$1" 2>/dev/null; }
pkg_check "... refused with one of another CA" refused client2
pid=$(ct systemctl show -p MainPID --value edgeflag)
install -m 0644 "$m/pki/rotated.crt" "$t/server.crt"
install -m 0640 -g "$(chroot "$m/root" getent group edgeflag | cut -d: -f3)" "$m/pki/rotated.key" "$t/server.key"
install -m 0644 "$m/pki/ca2.crt" "$t/client-ca.crt"
since=$(ct date '+%Y-%m-%d %H:%M:%S')
reload_out=$(ct systemctl reload edgeflag 2>&1) && rc=0 || rc=$?
pkg_check "systemctl reload edgeflag succeeds${reload_out:+: $reload_out}" test "$rc" = 0
sleep 1
journal=$(ct journalctl -u edgeflag --since "$since" --no-pager -o cat)
echo "$journal" | sed 's/^/     /'
journal_says() { grep -q "$1" <<<"$journal"; }
pkg_check "the journal says the certificate and client CA were reloaded" \
  journal_says 'msg="certificate reloaded".*CN=rotated.localhost.*client_ca="1 certificate: CN=deploy-real ca2"'
pkg_check "the same process ($pid) serves: reloaded, not restarted" test "$(ct systemctl show -p MainPID --value edgeflag)" = "$pid"
pkg_check "a client of the new CA is admitted" as client2
pkg_check "a client of the old CA is refused" refused client

real_step "power off"
ct systemctl poweroff || true
for _ in $(seq 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
pkg_check "the container powered off" sh -c "! kill -0 $nspawn_pid 2>/dev/null"

pkg_done "real systemd"
