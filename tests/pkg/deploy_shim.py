#!/usr/bin/env python3
"""deploy_shim.py - the two stand-ins tests/pkg/deploy.py puts on PATH for docs/deploy.md's blocks,
on a host whose root file system is the directory $EF_HOST_ROOT:

  apt-get install -y ./X.deb   extracts the package there (dpkg-deb -x) and creates its users with
                               systemd-sysusers --root, as the package's postinst would
  systemctl start|stop|restart|reload edgeflag
                               runs what the installed unit says: ExecStart, EnvironmentFile,
                               WorkingDirectory (StateDirectory created), ExecReload for reload,
                               SIGTERM for stop; as this user (the test cannot switch to edgeflag)

Absolute paths in the unit are taken inside $EF_HOST_ROOT. start waits until the server prints
"listening on" (or fails with its log). It must never touch anything outside $EF_HOST_ROOT.
"""
import glob, os, re, shlex, signal, subprocess, sys, time

name, args = sys.argv[1], sys.argv[2:]
root = os.environ['EF_HOST_ROOT']


def inroot(path):
    return root + path if path.startswith('/') else path


def die(msg):
    sys.stderr.write('%s (stand-in): %s\n' % (name, msg))
    sys.exit(1)


if name == 'apt-get':
    debs = [a for a in args if a.endswith('.deb')]
    if args[:1] != ['install'] or not debs:
        die('only "install [-y] ./X.deb" is stood in for: ' + ' '.join(args))
    for deb in debs:
        matches = glob.glob(deb)
        if len(matches) != 1:
            die('%s matches %d files' % (deb, len(matches)))
        subprocess.run(['dpkg-deb', '-x', matches[0], root], check=True)
    subprocess.run(['systemd-sysusers', '--root=' + root], check=True)
    sys.exit(0)

# systemctl
if len(args) != 2 or args[1] not in ('edgeflag', 'edgeflag.service'):
    die('only "start|stop|restart|reload edgeflag" is stood in for: ' + ' '.join(args))
verb = args[0]
unit = {}
unit_path = root + '/lib/systemd/system/edgeflag.service'
if not os.path.exists(unit_path):
    die('no unit at ' + unit_path + ' (is the package installed?)')
for line in open(unit_path):
    m = re.match(r'^(\w+)=(.*)$', line.strip())
    if m:
        unit.setdefault(m.group(1), []).append(m.group(2))
run = root + '/run'
os.makedirs(run, exist_ok=True)
pidfile, log, out = run + '/edgeflag.pid', run + '/edgeflag.log', run + '/edgeflag.out'


def running():
    try:
        pid = int(open(pidfile).read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def stop():
    pid = running()
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not running():
            break
        time.sleep(0.05)
    else:
        die('edgeflag did not stop within 10 s of SIGTERM')
    os.unlink(pidfile)


def start():
    if running():
        return
    argv = [inroot(a) for a in shlex.split(unit['ExecStart'][-1])]
    env = {'PATH': '/usr/bin:/bin'}
    for ef in unit.get('EnvironmentFile', []):
        optional = ef.startswith('-')
        path = inroot(ef.lstrip('-'))
        if not os.path.exists(path):
            if optional:
                continue
            die('EnvironmentFile %s is missing' % path)
        for line in open(path):
            line = line.strip()
            if line and not line.startswith('#'):
                k, _, v = line.partition('=')
                env[k] = v
    for sd in unit.get('StateDirectory', []):
        os.makedirs(root + '/var/lib/' + sd, exist_ok=True)
    wd = inroot(unit.get('WorkingDirectory', ['/'])[-1])
    with open(out, 'w') as o, open(log, 'a') as e:
        p = subprocess.Popen(argv, cwd=wd, env=env, stdout=o, stderr=e, start_new_session=True)
    open(pidfile, 'w').write(str(p.pid))
    for _ in range(200):
        if 'listening on' in open(out).read():
            return
        if p.poll() is not None:
            die('edgeflag exited with status %d:\n%s' % (p.returncode, open(log).read()[-2000:]))
        time.sleep(0.05)
    die('edgeflag did not listen within 10 s:\n' + open(log).read()[-2000:])


if verb == 'start':
    start()
elif verb == 'stop':
    stop()
elif verb == 'restart':
    stop()
    start()
elif verb == 'reload':
    pid = running()
    if not pid:
        die('edgeflag is not running')
    cmd = unit['ExecReload'][-1].replace('$MAINPID', str(pid))
    subprocess.run(shlex.split(cmd), check=True)
    time.sleep(0.3)  # systemd does not wait for the reload either; let the server read the files
else:
    die('unknown verb ' + verb)
