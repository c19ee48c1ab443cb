#!/usr/bin/env python3
"""deploy.py - runs every ```sh block of docs/deploy.md, in order, on this machine (tests/pkg/deploy.sh
starts it). Each host (iad, lhr, syd) is a directory standing for its root file system; host names
resolve to localhost and port 8443 becomes a free port per host; `apt-get install ./X.deb` and
`systemctl` are stand-ins (below) because the test machine has no systemd to run units. Everything
else runs as written. A block that exits non-zero fails the test with its output. It never writes
outside its temporary directory and stops every server it started.

usage: deploy.py DOC DEB_DIR WORKDIR
"""
import glob, os, re, shutil, signal, socket, subprocess, sys, time

doc, deb_dir, work = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
HOSTS = ['iad', 'lhr', 'syd']
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


ports = {h: free_port() for h in HOSTS}
s3_port = free_port()
roots = {h: os.path.join(work, 'hosts', h, 'root') for h in HOSTS}
homes = {h: os.path.join(work, 'hosts', h, 'home') for h in HOSTS}
ws = os.path.join(work, 'workstation')
shims = os.path.join(work, 'shims')
for d in list(roots.values()) + list(homes.values()) + [ws, shims]:
    os.makedirs(d, exist_ok=True)
group = subprocess.run(['id', '-gn'], capture_output=True, text=True, check=True).stdout.strip()
user = subprocess.run(['id', '-un'], capture_output=True, text=True, check=True).stdout.strip()

# The stand-ins: one Python program behind both names, told apart by argv[0].
shim = os.path.join(here, 'deploy_shim.py')
for name in ('apt-get', 'systemctl', 'docker'):
    path = os.path.join(shims, name)
    with open(path, 'w') as f:
        f.write('#!/bin/sh\nexec python3 %s %s "$@"\n' % (shim, name))
    os.chmod(path, 0o755)


def blocks(text):
    """(header, body) of every ```sh block, in order."""
    for m in re.finditer(r'^```sh\n(.*?)^```', text, re.S | re.M):
        body = m.group(1)
        first = body.split('\n', 1)[0]
        if not first.startswith('# on '):
            sys.exit('deploy.py: a ```sh block must start with "# on HOST[, HOST]" or "# on the workstation": ' + first)
        yield first[5:].strip(), body


def rewrite(body, host):
    """The mapping this machine needs, documented in docs/deploy.md ("How this page is tested")."""
    def hostport(m):
        return 'localhost:%d' % ports[m.group(1)]
    body = re.sub(r'\b(iad|lhr|syd)\.flags\.example\.net:8443', hostport, body)
    body = body.replace('https://s3.example.net', 'http://127.0.0.1:%d' % s3_port)
    body = body.replace('AKIAIOSFODNN7EXAMPLE', 'S3RVER').replace('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'S3RVER')
    body = re.sub(r'(\$host|%s|\b(?:iad|lhr|syd))\.flags\.example\.net', 'localhost', body)
    if host:
        body = body.replace('0.0.0.0:8443', '127.0.0.1:%d' % ports[host])
        root = roots[host]
        body = re.sub(r'(?<![\w./-])/(etc/edgeflag|var/lib/edgeflag|var/backups)', root + r'/\1', body)
        body = body.replace('-g edgeflag ', '-g %s ' % group)
        body = body.replace('edgeflag:edgeflag', '%s:%s' % (user, group))
        body = body.replace('id -u edgeflag', 'id -u').replace('id -g edgeflag', 'id -g')
    return body


def sync_to_host(host):
    """The files the page says are copied from the workstation to every host."""
    home = homes[host]
    if os.path.isdir(os.path.join(ws, 'pki')):
        shutil.rmtree(os.path.join(home, 'pki'), ignore_errors=True)
        shutil.copytree(os.path.join(ws, 'pki'), os.path.join(home, 'pki'))
    if os.path.exists(os.path.join(ws, 'admin.token')):
        shutil.copy(os.path.join(ws, 'admin.token'), home)
    for deb in glob.glob(os.path.join(deb_dir, 'edgeflag_*_amd64.deb')):
        shutil.copy(deb, home)
    if not os.path.lexists(os.path.join(home, 'edgeflag')):  # "a checkout of edgeflag in ./edgeflag"
        os.symlink(repo, os.path.join(home, 'edgeflag'))


def run(where, host, body):
    env = dict(os.environ)
    env['region'] = host or ''
    path = [shims]
    if host:
        env['EF_HOST_ROOT'] = roots[host]
        env['EF_DOCKER_BUILD'] = os.path.join(repo, os.environ.get('BUILD', 'build'))
        path.append(os.path.join(roots[host], 'usr', 'bin'))
    env['PATH'] = ':'.join(path + [os.environ['PATH']])
    cwd = homes[host] if host else ws
    r = subprocess.run(['bash', '-euo', 'pipefail', '-c', rewrite(body, host)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    return r


# The object store: tests/backup's S3-protocol server (s3rver behind a SigV4 check).
s3 = subprocess.Popen(['node', os.path.join(repo, 'tests', 'backup', 's3server.mjs'), str(s3_port),
                       os.path.join(work, 's3'), 'edgeflag-backups'],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
line = s3.stdout.readline()
if 's3 listening' not in line:
    s3.kill()
    sys.exit('deploy.py: the S3 server did not start: ' + line + s3.stdout.read()[-2000:])
failed = 0
count = 0
try:
    text = open(doc).read()
    for where, body in blocks(text):
        where = re.sub(r'\s*\(.*\)$', '', where)  # "(with ...)": a note for the reader
        hosts = [None] if where == 'the workstation' else [h.strip() for h in where.split(',')]
        for host in hosts:
            if host is not None and host not in HOSTS:
                sys.exit('deploy.py: unknown host %r in "# on %s"' % (host, where))
            count += 1
            if host:
                sync_to_host(host)
            first_cmd = next((l for l in body.split('\n')[1:] if l.strip()), '')
            r = run(where, host, body)
            label = '%-16s %s' % (host or 'workstation', first_cmd[:90])
            if r.returncode == 0:
                print('  ok   ' + label)
            else:
                failed += 1
                print('  FAIL ' + label + ' (exit %d)' % r.returncode)
                print('       ---- output\n' + ''.join('       ' + l + '\n' for l in (r.stdout + r.stderr).splitlines()[-40:]))
                for h in HOSTS:
                    log = os.path.join(roots[h], 'run', 'edgeflag.log')
                    if os.path.exists(log):
                        tail = open(log).read().splitlines()[-8:]
                        print('       ---- %s server log\n' % h + ''.join('       ' + l + '\n' for l in tail))
                break
        if failed:
            break
finally:
    s3.terminate()
    for h in HOSTS:
        for stop in (['systemctl', 'stop', 'edgeflag'], ['docker', 'stop', 'edgeflag']):
            subprocess.run([os.path.join(shims, stop[0])] + stop[1:],
                           env=dict(os.environ, EF_HOST_ROOT=roots[h]), capture_output=True)

if count == 0:
    sys.exit('deploy.py: no ```sh block found in ' + doc)
print('deploy test: %d block runs, %s' % (count, 'all passed' if not failed else 'FAILED'))
sys.exit(1 if failed else 0)
