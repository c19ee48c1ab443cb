#!/usr/bin/env python3
"""deploy_shim.py - the stand-ins tests/pkg/deploy.py puts on PATH for docs/deploy.md's blocks,
on a host whose root file system is the directory $EF_HOST_ROOT:

  apt-get install -y ./X.deb   extracts the package there (dpkg-deb -x) and creates its users with
                               systemd-sysusers --root, as the package's postinst would
  systemctl start|stop|restart|reload|disable edgeflag
                               runs what the installed unit says: ExecStart, EnvironmentFile,
                               WorkingDirectory (StateDirectory created), ExecReload for reload,
                               SIGTERM for stop; as this user (the test cannot switch to edgeflag)

  docker build -t NAME DIR     runs DIR/Dockerfile's build-stage RUN line (scripts/build-install.sh,
                               the build directory $EF_DOCKER_BUILD reused) into an image directory
                               and records its ENV, WORKDIR, ENTRYPOINT and CMD
  docker run -d --name N [--network host] [--restart R] [--user U] [-v SRC:DST[:ro]]...
             [--env-file F] [-e K=V]... IMAGE
                               starts the image's ENTRYPOINT + CMD with its ENV, the env file and
                               -e values; a container path under a -v DST is the host's SRC, any
                               other absolute path is inside the image
  docker stop|rm N             stops it (SIGTERM) / forgets it

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

if name == 'docker':
    import json
    images = os.path.join(os.path.dirname(root), '..', 'images')
    state = os.path.join(root, 'run', 'docker')
    os.makedirs(state, exist_ok=True)
    if args[:1] == ['build']:
        if len(args) != 4 or args[1] != '-t':
            die('only "build -t NAME DIR" is stood in for')
        tag, src = args[2], os.path.abspath(args[3])
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from dockerfile import instructions
        lines = instructions(os.path.join(src, 'Dockerfile'))
        image = os.path.join(images, tag)
        meta = {'env': {}, 'workdir': '/', 'entrypoint': [], 'cmd': []}
        for l in lines:
            ins, _, rest = l.partition(' ')
            if ins == 'RUN' and 'scripts/build-install.sh' in rest:
                env = dict(os.environ, BUILD_DIR=os.environ['EF_DOCKER_BUILD'], STAGE=image + '/stage')
                subprocess.run(['bash', '-euo', 'pipefail', '-c', rest], cwd=src, env=env, check=True,
                               stdout=subprocess.DEVNULL)
            elif ins == 'FROM':
                meta = {'env': {}, 'workdir': '/', 'entrypoint': [], 'cmd': []}  # the last stage counts
            elif ins == 'ENV':
                for kv in shlex.split(rest):
                    k, _, v = kv.partition('=')
                    meta['env'][k] = v
            elif ins == 'WORKDIR':
                meta['workdir'] = rest.strip()
            elif ins in ('ENTRYPOINT', 'CMD'):
                meta[ins.lower()] = json.loads(rest)
        os.makedirs(image, exist_ok=True)
        json.dump(meta, open(os.path.join(image, 'meta.json'), 'w'))
        sys.exit(0)
    if args[:1] == ['run']:
        a, env, mounts, cname, i = args[1:], {}, [], None, 0
        while i < len(a) and a[i].startswith('-'):
            opt = a[i]
            if opt == '-d':
                i += 1
                continue
            val = a[i + 1]
            i += 2
            if opt == '--name':
                cname = val
            elif opt == '-e':
                k, _, v = val.partition('=')
                env[k] = v
            elif opt == '--env-file':
                for line in open(val):
                    line = line.strip()
                    if line and not line.startswith('#'):
                        k, _, v = line.partition('=')
                        env[k] = v
            elif opt == '-v':
                src, dst = val.split(':')[:2]
                if dst.startswith(root + '/'):  # deploy.py mapped the container's side too
                    dst = dst[len(root):]
                mounts.append((dst.rstrip('/'), src.rstrip('/')))
            elif opt in ('--network', '--restart', '--user'):
                pass  # one network namespace, no restarts, one user here
            else:
                die('option %s is not stood in for' % opt)
        if not cname or i >= len(a):
            die('run needs --name and an image')
        image = os.path.join(images, a[i])
        meta = json.load(open(os.path.join(image, 'meta.json')))

        def host_path(p):
            if p.startswith(root + '/'):
                p = p[len(root):]
            for dst, src in mounts:
                if p == dst or p.startswith(dst + '/'):
                    return src + p[len(dst):]
            return image + '/stage' + p if p.startswith('/') else p
        full = dict(meta['env'])
        full.update(env)
        full = {k: host_path(v) if v.startswith('/') else v for k, v in full.items()}
        full['PATH'] = image + '/stage/usr/local/bin:/usr/bin:/bin'
        argv = meta['entrypoint'] + (a[i + 1:] or meta['cmd'])
        argv = [host_path(x) if x.startswith('/') else x for x in argv]
        out = os.path.join(state, cname + '.out')
        with open(out, 'w') as o, open(os.path.join(state, cname + '.log'), 'w') as e:
            p = subprocess.Popen(argv, cwd=host_path(meta['workdir']), env=full, stdout=o, stderr=e,
                                 start_new_session=True)
        open(os.path.join(state, cname + '.pid'), 'w').write(str(p.pid))
        for _ in range(200):
            if 'listening on' in open(out).read():
                print(cname)
                sys.exit(0)
            if p.poll() is not None:
                die('container %s exited with status %d:\n%s' % (cname, p.returncode,
                    open(os.path.join(state, cname + '.log')).read()[-2000:]))
            time.sleep(0.05)
        die('container %s did not listen within 10 s' % cname)
    if args[:1] in (['stop'], ['rm']) and len(args) == 2:
        pidfile = os.path.join(state, args[1] + '.pid')
        if args[0] == 'rm':
            sys.exit(0 if not os.path.exists(pidfile) else die('container %s is running' % args[1]))
        if os.path.exists(pidfile):
            pid = int(open(pidfile).read())
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(200):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except OSError:
                pass
            os.unlink(pidfile)
        sys.exit(0)
    die('only build, run, stop and rm are stood in for: ' + ' '.join(args))

# systemctl
if len(args) != 2 or args[1] not in ('edgeflag', 'edgeflag.service'):
    die('only "start|stop|restart|reload|disable edgeflag" is stood in for: ' + ' '.join(args))
verb = args[0]
if verb == 'disable':  # what systemctl disable does: remove the unit's [Install] symlink
    link = root + '/etc/systemd/system/multi-user.target.wants/edgeflag.service'
    if os.path.lexists(link):
        os.unlink(link)
    sys.exit(0)
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
    # systemd's substitution: ${MAINPID} inside a word, $MAINPID as a word of its own
    cmd = unit['ExecReload'][-1].replace('${MAINPID}', str(pid)).replace('$MAINPID', str(pid))
    subprocess.run(shlex.split(cmd), check=True)
    time.sleep(0.3)  # systemd does not wait for the reload either; let the server read the files
else:
    die('unknown verb ' + verb)
