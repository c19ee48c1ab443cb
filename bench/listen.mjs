// listen.mjs - for the benchmarks: the URL a server prints on its standard output ("listening on
// URL"), as edgeflag serve, bench_mhd_floor and the test peers do. Fails when the process exits
// first or, given ms, when no such line came in time. The child must be spawned with stdout piped.
export function listeningUrl(child, what, ms = 0) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = ms ? setTimeout(() => reject(new Error(`${what}: no "listening on" line within ${ms} ms`)), ms) : null;
    const onExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before listening`));
    };
    child.on('exit', onExit);
    child.stdout.on('data', (d) => {
      text += d;
      const m = /listening on (\S+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(m[1]);
      }
    });
  });
}
