#!/usr/bin/env python3
"""dockerfile.py - reads a Dockerfile into its instructions, continuation lines joined and comments
dropped, for the tests that check and run what the Dockerfile says without Docker
(tests/pkg/docker.sh, the docker stand-in of tests/pkg/deploy_shim.py). It only reads.

usage: dockerfile.py DOCKERFILE   prints "INSTRUCTION rest" per line
"""
import sys


def instructions(path):
    lines, cur = [], ''
    for raw in open(path):
        line = raw.rstrip('\n')
        if not cur and (not line.strip() or line.lstrip().startswith('#')):
            continue
        if line.endswith('\\'):
            cur += line[:-1] + ' '
            continue
        lines.append(cur + line)
        cur = ''
    return lines


if __name__ == '__main__':
    print('\n'.join(instructions(sys.argv[1])))
