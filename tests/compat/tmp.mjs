// Temporary directories for tests and benches that are removed when the process exits.
// tempDir(prefix) makes a fresh directory under the system temporary directory (os.tmpdir()) and
// remembers it; on exit every remembered directory is removed, so a run leaves nothing in /tmp,
// whether its tests passed or failed. EF_KEEP_TMP=1 keeps them (listed on stderr) for a look.
// It must never remove a directory it did not create itself: only the paths tempDir returned.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made = [];

process.on('exit', () => {
  if (made.length === 0) return;
  if (process.env.EF_KEEP_TMP === '1') {
    process.stderr.write(`EF_KEEP_TMP=1: kept ${made.join(' ')}\n`);
    return;
  }
  for (const dir of made) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
});

export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}
