// harness.mjs - what the browser tests share: starting `edgeflag serve` (primary or replica) on a
// fresh database and a free port, launching Debian's Chromium headless through playwright-core with
// a fresh profile, collecting page errors (a test fails on any), and screenshots into
// docs/screenshots. It must never reach the internet: Chromium runs with background networking,
// component updates and sync off, and the pages only load from the local server.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { tempDir } from '../compat/tmp.mjs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = path.resolve(repoRoot, process.env.EDGEFLAG_BIN || 'build/edgeflag');
export const shotsDir = path.join(repoRoot, 'docs', 'screenshots');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

// Starts a server; extra(dir) gives more arguments. Resolves {proc, base, dir} once it listens.
export function startServer(extra = () => [], env = {}) {
  return new Promise((resolve, reject) => {
    const dir = tempDir('edgeflag-e2e-');
    const proc = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'e2e.db'), ...extra(dir)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let errText = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${errText}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: m[1], dir, stderr: () => errText });
      }
    });
    proc.stderr.on('data', (d) => { errText += d; });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}): ${errText}`));
    });
  });
}

export function stopServer(s) {
  if (!s) return;
  s.proc.removeAllListeners('exit');
  s.proc.kill('SIGTERM');
  rmSync(s.dir, { recursive: true, force: true });
}

export async function launchBrowser() {
  const profile = tempDir('edgeflag-chromium-');
  // a persistent context on a fresh directory: Playwright passes it as --user-data-dir
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: DESKTOP,
    serviceWorkers: 'block',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A page that records uncaught errors and console errors (tests assert there are none).
export async function newPage(context, viewport = DESKTOP) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // 4xx answers the UI shows to the user are expected; anything else is a bug
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      page.errors.push(`console: ${m.text()}`);
    }
  });
  page.setDefaultTimeout(5000);
  return page;
}

export async function shot(page, name) {
  mkdirSync(shotsDir, { recursive: true });
  await page.screenshot({ path: path.join(shotsDir, `${name}.png`), fullPage: true });
}

// One management API call from Node (to check what the server really holds).
export async function api(base, method, p, body, headers = {}) {
  const res = await fetch(base + p, { method, headers: { 'Content-Type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}
