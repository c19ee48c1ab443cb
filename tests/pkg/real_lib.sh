# real_lib.sh - helpers of `make deploy-real` (sourced from the repository's root, not run; brings
# lib.sh's pkg_check and friends, and stops the script unless it runs as root): the container and
# systemd checks that need root, a kernel that allows namespaces and mounts, and the Debian mirror.
# It makes a Debian 12 root file system with debootstrap once and keeps it under the work
# directory, so a second run does not download it again.
# Must never: touch the machine's own Docker or systemd (everything runs under the work
# directory, on a private socket or in a container), or leave a process it started running.

. tests/pkg/lib.sh

real_work=${EF_REAL_DIR:-/var/tmp/edgeflag-deploy-real}
real_mirror=${EF_REAL_MIRROR:-http://deb.debian.org/debian}

real_need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "make deploy-real needs root (a Docker daemon, debootstrap, systemd-nspawn)" >&2
    exit 1
  fi
}

real_step() { printf '\n== %s  [%ss]\n' "$*" "$SECONDS"; }

# real_rootfs [PACKAGES...]: prints the path of a Debian 12 (bookworm) minbase root, with PACKAGES
# added when named, made once under $real_work and reused ("DIR.done" marks a complete one). The
# roots with packages start from a copy of the plain one: one debootstrap download in all.
real_rootfs() {
  local base=$real_work/bookworm-minbase
  if [ ! -e "$base.done" ]; then
    rm -rf "$base"
    mkdir -p "$real_work"
    echo "  debootstrap --variant=minbase bookworm $base ($real_mirror)" >&2
    debootstrap --variant=minbase bookworm "$base" "$real_mirror" >"$base.log" 2>&1 ||
      { tail -20 "$base.log" >&2; echo "debootstrap failed (whole log: $base.log)" >&2; return 1; }
    touch "$base.done"
  fi
  [ $# -gt 0 ] || { echo "$base"; return 0; }
  local dir=$base+$(echo "$*" | tr ' ' '+')
  if [ ! -e "$dir.done" ]; then
    rm -rf "$dir"
    cp -a "$base" "$dir"
    echo "  apt-get install $* in a copy of it" >&2
    real_chroot "$dir" apt-get install -y -qq --no-install-recommends "$@" >"$dir.log" 2>&1 ||
      { tail -20 "$dir.log" >&2; echo "apt-get install $* in $dir failed (log: $dir.log)" >&2; return 1; }
    touch "$dir.done"
  fi
  echo "$dir"
}

# real_chroot ROOT COMMAND...: COMMAND in ROOT with /proc mounted (apt's maintainer scripts read it).
real_chroot() {
  local dir=$1; shift
  mount -t proc proc "$dir/proc"
  local rc=0
  DEBIAN_FRONTEND=noninteractive chroot "$dir" "$@" || rc=$?
  umount "$dir/proc"
  return $rc
}

# real_wait SECONDS COMMAND...: retries COMMAND every half second until it succeeds.
real_wait() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.5
  done
}

real_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# real_pki DIR: a throwaway CA "ca" and a second CA "ca2", a server certificate "server"
# (localhost, 127.0.0.1) and "rotated" (the same names, another subject), client certificates
# "client" (signed by ca) and "client2" (signed by ca2): DIR/NAME.crt and DIR/NAME.key.
real_pki() {
  local d=$1 n
  mkdir -p "$d"
  for n in ca ca2; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=deploy-real $n" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -keyout "$d/$n.key" -out "$d/$n.crt" 2>/dev/null
  done
  real_leaf "$d" ca server localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
  real_leaf "$d" ca rotated rotated.localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
  real_leaf "$d" ca client replica-1 'extendedKeyUsage=clientAuth'
  real_leaf "$d" ca2 client2 replica-2 'extendedKeyUsage=clientAuth'
}

real_leaf() { # dir, ca, name, cn, extensions (printf format)
  local d=$1
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$4" \
    -keyout "$d/$3.key" -out "$d/$3.csr" 2>/dev/null
  openssl x509 -req -in "$d/$3.csr" -CA "$d/$2.crt" -CAkey "$d/$2.key" -CAcreateserial -days 2 \
    -extfile <(printf "$5\n") -out "$d/$3.crt" 2>/dev/null
}

real_need_root
