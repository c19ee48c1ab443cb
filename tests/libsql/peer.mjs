// peer.mjs - a Hrana v2/v3-over-HTTP test server on the real libSQL engine (the npm `libsql`
// package), standing in for sqld/Turso in tests, benchmarks and `make demo-libsql`, since no sqld
// can be installed on this machine.
//
// It serves what sqld serves to HTTP clients: POST /v2/pipeline and /v3/pipeline (JSON), GET /v2,
// /v3 and /health, batons chaining requests on one stream (one libSQL connection per stream, so a
// transaction lives on its stream), idle-stream expiry answered with STREAM_EXPIRED, plain-text 400s
// for invalid or reused batons, Bearer auth, and sqld's dev routing /dev/{namespace}/v2/pipeline
// (one database file per namespace). Values follow Hrana's JSON encoding (integers as strings, blobs
// as unpadded base64) and columns carry the real decltype.
//
// It must never be mistaken for a production server: it listens on loopback only, runs one
// request at a time (the engine is synchronous), and keeps no state beyond its database files.
//
// usage: node peer.mjs --db FILE [--dir DIR] [--port N] [--token T] [--stream-expiry-ms MS]
// Prints "listening on http://127.0.0.1:PORT" once ready.
import Database from 'libsql';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

export function startPeer({ db, dir, port = 0, token = null, streamExpiryMs = 10000, log = false } = {}) {
  if (!db && !dir) throw new Error('peer: --db FILE or --dir DIR is required');
  const streams = new Map(); // baton id -> stream
  const expired = new Set(); // ids of streams that timed out (answered with STREAM_EXPIRED)
  const files = new Map(); // namespace -> database path

  function dbPath(ns) {
    if (!ns) return db ?? path.join(dir, 'default.db');
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(ns)) throw Object.assign(new Error('invalid namespace'), { status: 400 });
    if (!files.has(ns)) files.set(ns, path.join(dir ?? path.dirname(db), ns + '.db'));
    return files.get(ns);
  }

  function openConn(file) {
    const conn = new Database(file, { timeout: 5000 });
    conn.defaultSafeIntegers(true);
    return conn;
  }

  function newStream(file) {
    const id = crypto.randomBytes(12).toString('base64url');
    const s = { id, file, conn: openConn(file), seq: 0, sqls: new Map(), timer: null, busy: false };
    streams.set(id, s);
    return s;
  }

  function closeStream(s) {
    clearTimeout(s.timer);
    streams.delete(s.id);
    try {
      if (s.conn.inTransaction) s.conn.exec('ROLLBACK');
    } catch {}
    s.conn.close();
  }

  function touch(s) {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      expired.add(s.id);
      closeStream(s);
    }, streamExpiryMs);
    s.timer.unref();
  }

  // ---- values ----
  function decodeValue(v) {
    if (!v || typeof v !== 'object') throw hranaError('ARGS_INVALID', 'value is not an object');
    switch (v.type) {
      case 'null':
        return null;
      case 'integer':
        if (typeof v.value !== 'string' || !/^-?\d+$/.test(v.value)) throw hranaError('ARGS_INVALID', 'integer value must be a decimal string');
        return BigInt(v.value);
      case 'float':
        if (typeof v.value !== 'number' || !Number.isFinite(v.value)) throw hranaError('ARGS_INVALID', 'float value must be a finite number');
        return v.value;
      case 'text':
        return String(v.value);
      case 'blob':
        return Buffer.from(v.base64 ?? '', 'base64');
      default:
        throw hranaError('ARGS_INVALID', `unknown value type ${v.type}`);
    }
  }

  function encodeValue(x) {
    if (x === null || x === undefined) return { type: 'null' };
    if (typeof x === 'bigint') return { type: 'integer', value: x.toString() };
    if (typeof x === 'number') return { type: 'float', value: x };
    if (typeof x === 'string') return { type: 'text', value: x };
    if (Buffer.isBuffer(x) || x instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(x).toString('base64').replace(/=+$/, '') };
    return { type: 'text', value: String(x) };
  }

  function hranaError(code, message) {
    return Object.assign(new Error(message), { hrana: { message, code } });
  }

  function toHranaError(e) {
    if (e.hrana) return e.hrana;
    return { message: e.message, code: e.code && /^SQLITE_/.test(e.code) ? e.code : 'SQLITE_ERROR' };
  }

  // ---- statements ----
  function stmtSql(s, stmt) {
    if (stmt.sql != null && stmt.sql_id != null) throw hranaError('ARGS_INVALID', 'both sql and sql_id given');
    if (stmt.sql_id != null) {
      if (!s.sqls.has(stmt.sql_id)) throw hranaError('SQL_STORE_NOT_FOUND', `sql_id ${stmt.sql_id} is not stored`);
      return s.sqls.get(stmt.sql_id);
    }
    if (typeof stmt.sql !== 'string') throw hranaError('ARGS_INVALID', 'statement without sql');
    return stmt.sql;
  }

  function execute(s, stmt) {
    const sql = stmtSql(s, stmt);
    const st = s.conn.prepare(sql);
    const args = (stmt.args ?? []).map(decodeValue);
    const named = {};
    for (const { name, value } of stmt.named_args ?? []) named[String(name).replace(/^[:@$]/, '')] = decodeValue(value);
    const params = Object.keys(named).length ? (args.length ? [...args, named] : [named]) : args;
    if (st.reader) {
      st.raw(true);
      st.safeIntegers(true);
      const cols = st.columns().map((c) => ({ name: c.name, decltype: c.type ?? null }));
      const rows = st.all(...params);
      return {
        cols,
        rows: stmt.want_rows === false ? [] : rows.map((r) => r.map(encodeValue)),
        affected_row_count: 0,
        last_insert_rowid: null,
        rows_read: rows.length,
        rows_written: 0,
      };
    }
    const info = st.run(...params);
    return {
      cols: [],
      rows: [],
      affected_row_count: Number(info.changes),
      last_insert_rowid: info.lastInsertRowid == null ? null : String(info.lastInsertRowid),
      rows_read: 0,
      rows_written: Number(info.changes),
    };
  }

  function evalCond(c, res, conn) {
    if (c == null) return true;
    switch (c.type) {
      case 'ok':
        return res.step_results[c.step] != null;
      case 'error':
        return res.step_errors[c.step] != null;
      case 'not':
        return !evalCond(c.cond, res, conn);
      case 'and':
        return (c.conds ?? []).every((x) => evalCond(x, res, conn));
      case 'or':
        return (c.conds ?? []).some((x) => evalCond(x, res, conn));
      case 'is_autocommit':
        return !conn.inTransaction;
      default:
        throw hranaError('ARGS_INVALID', `unknown condition ${c.type}`);
    }
  }

  function batch(s, b) {
    const steps = b.steps ?? [];
    const res = { step_results: steps.map(() => null), step_errors: steps.map(() => null) };
    steps.forEach((step, i) => {
      if (!evalCond(step.condition, res, s.conn)) return;
      try {
        res.step_results[i] = execute(s, step.stmt);
      } catch (e) {
        res.step_errors[i] = toHranaError(e);
      }
    });
    return res;
  }

  function request(s, r, version) {
    switch (r.type) {
      case 'execute':
        return { type: 'execute', result: execute(s, r.stmt) };
      case 'batch':
        return { type: 'batch', result: batch(s, r.batch) };
      case 'sequence':
        // several statements separated by ';': the engine's exec runs exactly that
        s.conn.exec(r.sql_id != null ? stmtSql(s, { sql_id: r.sql_id }) : r.sql);
        return { type: 'sequence' };
      case 'describe': {
        const st = s.conn.prepare(stmtSql(s, r));
        return {
          type: 'describe',
          result: { params: [], cols: st.reader ? st.columns().map((c) => ({ name: c.name, decltype: c.type ?? null })) : [], is_explain: false, is_readonly: st.reader },
        };
      }
      case 'store_sql':
        if (s.sqls.has(r.sql_id)) throw hranaError('SQL_STORE_EXISTS', `sql_id ${r.sql_id} is already stored`);
        s.sqls.set(r.sql_id, r.sql);
        return { type: 'store_sql' };
      case 'close_sql':
        s.sqls.delete(r.sql_id);
        return { type: 'close_sql' };
      case 'close':
        s.closed = true;
        return { type: 'close' };
      case 'get_autocommit':
        if (version < 3) throw hranaError('NOT_SUPPORTED', 'get_autocommit needs Hrana 3');
        return { type: 'get_autocommit', is_autocommit: !s.conn.inTransaction };
      default:
        throw hranaError('ARGS_INVALID', `unknown request type ${r.type}`);
    }
  }

  // ---- HTTP ----
  function send(res, status, body, type = 'application/json') {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(data) });
    res.end(data);
  }

  function pipeline(req, res, body, ns, version) {
    let msg;
    try {
      msg = JSON.parse(body);
    } catch {
      return send(res, 400, 'Invalid JSON in request body', 'text/plain');
    }
    let s;
    const baton = msg.baton ?? null;
    if (baton === null) {
      s = newStream(dbPath(ns));
    } else {
      const [id, seq] = String(baton).split('.');
      if (expired.has(id)) return send(res, 400, { message: 'The stream has expired due to inactivity', code: 'STREAM_EXPIRED' });
      s = streams.get(id);
      if (!s) return send(res, 400, 'Received an invalid baton', 'text/plain');
      if (Number(seq) !== s.seq) return send(res, 400, 'Received a baton that has already been used', 'text/plain');
    }
    const results = (msg.requests ?? []).map((r) => {
      try {
        return { type: 'ok', response: request(s, r, version) };
      } catch (e) {
        return { type: 'error', error: toHranaError(e) };
      }
    });
    let out = null;
    if (s.closed) closeStream(s);
    else {
      s.seq++;
      touch(s);
      out = `${s.id}.${s.seq}`;
    }
    send(res, 200, { baton: out, base_url: null, results });
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        if (log) console.error(req.method, req.url);
        let url = req.url.split('?')[0];
        let ns = req.headers['x-namespace'] ?? null;
        const dev = url.match(/^\/dev\/([^/]+)(\/.*)$/);
        if (dev) [, ns, url] = dev;
        if (url === '/health' && req.method === 'GET') return send(res, 200, '', 'text/plain');
        if (token !== null && req.headers.authorization !== `Bearer ${token}`)
          return send(res, 401, { error: 'Unauthorized: missing or invalid token' });
        if (req.method === 'GET' && (url === '/v2' || url === '/v3')) return send(res, 200, 'Hrana over HTTP', 'text/plain');
        const m = url.match(/^\/v([23])\/pipeline$/);
        if (req.method === 'POST' && m) return pipeline(req, res, Buffer.concat(chunks).toString('utf8'), ns, Number(m[1]));
        send(res, 404, 'not found', 'text/plain');
      } catch (e) {
        send(res, e.status ?? 500, { message: e.message, code: 'INTERNAL' });
      }
    });
  });
  // Keep-alive as sqld does, so clients can reuse one connection.
  server.keepAliveTimeout = 30000;

  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({
        url,
        server,
        close: () =>
          new Promise((r) => {
            for (const s of [...streams.values()]) closeStream(s);
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (name, dflt = null) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const dir = opt('--dir');
  if (dir) fs.mkdirSync(dir, { recursive: true });
  const p = await startPeer({
    db: opt('--db'),
    dir,
    port: Number(opt('--port', '0')),
    token: opt('--token'),
    streamExpiryMs: Number(opt('--stream-expiry-ms', '10000')),
    log: args.includes('--log'),
  });
  console.log(`listening on ${p.url}`);
  const stop = () => p.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
