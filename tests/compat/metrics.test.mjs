// /metrics: Prometheus text that `promtool check metrics` accepts, with the families edgeflag
// promises (evaluations by namespace/flag/reason/result, evaluation and request latency histograms,
// responses by route and status, store writes and their latency, snapshot version per namespace),
// and counts that follow what was done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, call } from './server.mjs';

test('metrics follow the traffic and pass promtool', async () => {
  const srv = await startServer([]);
  try {
    await call(srv.url, 'POST', '/api/v1/flags', { key: 'm', name: 'M', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    await call(srv.url, 'POST', '/api/v1/flags', { key: 'm', name: 'dup' }); // refused: not unique
    for (let i = 0; i < 4; i++) await call(srv.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'm', entityId: `e${i}` });
    // a write recompiles the flag: its evaluations must go on counting into the same series
    const up = await call(srv.url, 'PUT', '/api/v1/flags/m', { key: 'm', name: 'M2', enabled: true });
    assert.equal(up.status, 200);
    for (let i = 4; i < 7; i++) await call(srv.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'm', entityId: `e${i}` });
    await call(srv.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'missing', entityId: 'e' });
    await call(srv.url, 'GET', '/api/nope');
    // a flag whose answers alternate: each lands in its own result series (the flag keeps only its
    // last one at hand, eval_metrics.c), and routes, methods and statuses in theirs (common.c)
    await call(srv.url, 'POST', '/api/v1/flags', { key: 'v', name: 'V', type: 'VARIANT_FLAG_TYPE', enabled: true });
    const gold = (await call(srv.url, 'POST', '/api/v1/flags/v/variants', { key: 'gold' })).json;
    await call(srv.url, 'POST', '/api/v1/segments', { key: 'vip', name: 'VIP', matchType: 'ALL_MATCH_TYPE' });
    await call(srv.url, 'POST', '/api/v1/segments/vip/constraints', { type: 'STRING_COMPARISON_TYPE', property: 'tier', operator: 'eq', value: 'gold' });
    const rule = (await call(srv.url, 'POST', '/api/v1/flags/v/rules', { segmentKey: 'vip', rank: 1 })).json;
    await call(srv.url, 'POST', `/api/v1/flags/v/rules/${rule.id}/distributions`, { variantId: gold.id, rollout: 100 });
    for (let i = 0; i < 10; i++) {
      const r = await call(srv.url, 'POST', '/evaluate/v1/variant', { flagKey: 'v', entityId: `e${i}`, context: { tier: i % 2 ? 'gold' : 'tin' } });
      assert.equal(r.json.match, i % 2 === 1);
    }
    for (let i = 0; i < 3; i++) await call(srv.url, 'PATCH', '/evaluate/v1/variant');
    await call(srv.url, 'PROPFIND', '/api/nope');
    await call(srv.url, 'MKCOL', '/api/nope'); // another method outside the seven: the same "OTHER" series
    const r = await fetch(srv.url + '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // promtool's one style remark is about Flipt's own name (flipt_evaluations_latency_milliseconds,
    // kept as Flipt exports it so its dashboards work); anything else fails
    const remarks = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.trim() && !l.startsWith('flipt_evaluations_latency_milliseconds use base unit'));
    assert.ok(lint.status === 0 || (lint.status === 3 && remarks.length === 0), `promtool (${lint.status}): ${lint.stdout}${lint.stderr}`);
    const value = (re) => Number((text.match(re) ?? [])[1]);
    assert.equal(value(/^edgeflag_evaluations_total\{namespace="default",flag="m",reason="DEFAULT_EVALUATION_REASON",result="true"\} (\d+)$/m), 7);
    assert.equal(value(/^edgeflag_evaluations_total\{namespace="default",flag="missing",reason="ERROR",result="false"\} (\d+)$/m), 1);
    assert.equal(value(/^edgeflag_unknown_flag_evaluations_total\{namespace="default",flag="missing"\} (\d+)$/m), 1);
    assert.equal(value(/^edgeflag_evaluation_duration_seconds_count\{type="boolean"\} (\d+)$/m), 7);
    assert.equal(value(/^edgeflag_evaluation_duration_seconds_count\{type="variant"\} (\d+)$/m), 10);
    assert.equal(value(/^flipt_evaluations_requests_total\{namespace="default",flag="m"\} (\d+)$/m), 7);
    assert.equal(value(/^flipt_evaluations_latency_milliseconds_count\{namespace="default",flag="m"\} (\d+)$/m), 7);
    assert.equal(value(/^edgeflag_http_responses_total\{route="\/evaluate\/v1\/boolean",method="POST",status="200"\} (\d+)$/m), 7);
    assert.equal(value(/^edgeflag_http_responses_total\{route="\/evaluate\/v1\/boolean",method="POST",status="404"\} (\d+)$/m), 1);
    assert.equal(value(/^edgeflag_http_responses_total\{route="unmatched",method="GET",status="404"\} (\d+)$/m), 1);
    assert.ok(value(/^edgeflag_http_request_duration_seconds_count\{route="\/evaluate\/v1\/boolean"\} (\d+)$/m) >= 8);
    assert.equal(value(/^flipt_evaluations_results_total\{namespace="default",flag="v",type="variant",reason="MATCH_EVALUATION_REASON",value="gold",match="true",segment="vip"\} (\d+)$/m), 5);
    assert.equal(value(/^flipt_evaluations_results_total\{namespace="default",flag="v",type="variant",reason="UNKNOWN_EVALUATION_REASON",value="",match="false",segment=""\} (\d+)$/m), 5);
    assert.equal(value(/^edgeflag_evaluations_total\{namespace="default",flag="v",reason="MATCH_EVALUATION_REASON",result="true"\} (\d+)$/m), 5);
    assert.equal(value(/^edgeflag_http_responses_total\{route="\/evaluate\/v1\/variant",method="POST",status="200"\} (\d+)$/m), 10);
    assert.equal(value(/^edgeflag_http_responses_total\{route="unmatched",method="PATCH",status="405"\} (\d+)$/m), 3);
    assert.equal(value(/^edgeflag_http_responses_total\{route="unmatched",method="OTHER",status="404"\} (\d+)$/m), 2);
    assert.doesNotMatch(text, /method="(PROPFIND|MKCOL)"/);
    assert.equal(value(/^edgeflag_http_request_duration_seconds_count\{route="\/evaluate\/v1\/variant"\} (\d+)$/m), 10);
    assert.equal(value(/^edgeflag_store_writes_total\{operation="flag_create",result="ok"\} (\d+)$/m), 2);
    assert.equal(value(/^edgeflag_store_writes_total\{operation="flag_create",result="error"\} (\d+)$/m), 1);
    assert.ok(value(/^edgeflag_store_write_duration_seconds_count (\d+)$/m) >= 1);
    assert.ok(value(/^edgeflag_snapshot_version\{namespace="default"\} (\d+)$/m) >= 1);
  } finally {
    await srv.stop();
  }
});

// Keys and methods are the client's to choose. Counted each under its own labels, 8,192 made-up
// flag keys would fill the evaluation families and 4,096 the activity table, and a flag created
// after that would be counted under "_other" / overflowed for good (its series are looked up once).
test('made-up flag keys, namespaces and methods cannot crowd real flags out of the metrics', async () => {
  const srv = await startServer([]);
  try {
    const N = 9000;
    const request = (i) => {
      switch (i % 4) {
        case 0: return ['POST', '/evaluate/v1/variant', { flagKey: `made-up-${i}`, entityId: 'e' }];
        case 1: return ['POST', '/evaluate/v1/boolean', { namespaceKey: `ns-${i}`, flagKey: `made-up-${i}`, entityId: 'e' }];
        case 2: return ['POST', '/evaluate/v1/batch', { requests: [{ flagKey: `made-up-${i}`, entityId: 'e' }] }];
        default: return ['POST', `/ofrep/v1/evaluate/flags/made-up-${i}`, { context: { targetingKey: 'e' } }];
      }
    };
    const run = async (n, width, fn) => {
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < n; i = next++) await fn(i);
      };
      await Promise.all(Array.from({ length: width }, worker));
    };
    await run(N, 32, async (i) => {
      const [method, p, body] = request(i);
      const r = await call(srv.url, method, p, body);
      assert.ok(r.status === 404 || r.status === 200, `${p}: ${r.status} ${r.text}`);
    });
    // more made-up methods than edgeflag_http_responses_total keeps (1,024)
    await run(1100, 16, (i) => call(srv.url, `X${i}`, '/api/nope'));

    await call(srv.url, 'POST', '/api/v1/flags', { key: 'late', name: 'Late', type: 'BOOLEAN_FLAG_TYPE', enabled: true });
    for (let i = 0; i < 3; i++) assert.equal((await call(srv.url, 'POST', '/evaluate/v1/boolean', { flagKey: 'late', entityId: `e${i}` })).status, 200);
    const del = await call(srv.url, 'DELETE', '/api/v1/flags/late/variants/none'); // a route and method not seen before

    const text = await (await fetch(srv.url + '/metrics')).text();
    const value = (re) => Number((text.match(re) ?? [])[1]);
    assert.equal(value(/^edgeflag_evaluations_total\{namespace="default",flag="late",reason="DEFAULT_EVALUATION_REASON",result="true"\} (\d+)$/m), 3);
    assert.equal(value(/^flipt_evaluations_requests_total\{namespace="default",flag="late"\} (\d+)$/m), 3);
    assert.equal(value(/^edgeflag_flag_evaluations_total\{node="[^"]*",namespace="default",flag="late",outcome="enabled"\} (\d+)$/m), 3);
    assert.equal(value(new RegExp(`^edgeflag_http_responses_total\\{route="/api/v1/flags/\\{flagKey\\}/variants/\\{id\\}",method="DELETE",status="${del.status}"\\} (\\d+)$`, 'm')), 1);
    assert.equal(value(/^edgeflag_http_responses_total\{route="unmatched",method="OTHER",status="404"\} (\d+)$/m), 1100);
    assert.equal(value(/^edgeflag_flag_evaluations_overflowed_total\{node="[^"]*"\} (\d+)$/m), 0);
    assert.doesNotMatch(text, /method="X\d/);
    // the made-up keys: a budget of 256 counted under their own keys (in every family alike),
    // the rest under "(unknown)"; every evaluation counted once
    const errors = [...text.matchAll(/^flipt_evaluations_errors_total\{namespace="([^"]*)",flag="([^"]*)"\} (\d+)$/gm)];
    const own = errors.filter((m) => m[2] !== '(unknown)');
    assert.ok(own.length >= 200 && own.length <= 256, `${own.length} made-up keys kept`);
    assert.equal(errors.reduce((a, m) => a + Number(m[3]), 0), N);
    assert.ok(errors.every((m) => m[2] !== '(unknown)' || m[1] === 'default' || m[1] === '(unknown)'), 'a made-up namespace past the budget is "(unknown)"');
    assert.equal([...text.matchAll(/^edgeflag_flag_evaluations_total\{[^}]*outcome="error"\} \d+$/gm)].length, errors.length);
    assert.equal([...text.matchAll(/^edgeflag_unknown_flag_evaluations_total\{namespace="(?!_other)/gm)].length, own.length);
    assert.doesNotMatch(text, /^edgeflag_evaluations_total\{[^}]*"_other"/m);
    const act = await call(srv.url, 'GET', '/edgeflag/v1/namespaces/default/flags/late/activity');
    assert.equal(act.status, 200);
    assert.equal(act.json.activity.total, 3);
  } finally {
    await srv.stop();
  }
});

// Label values can come from the request (an unknown flag key, an OFREP namespace header), and
// percent-decoding or a raw header can make them any bytes. Prometheus refuses a whole scrape
// when one label value is not UTF-8 ("invalid UTF-8 label value"), so one such request used to
// break monitoring for the life of the process (the series is never dropped).
test('label values from requests that are not UTF-8 cannot break the scrape', async () => {
  const srv = await startServer([]);
  try {
    const ctx = { context: { targetingKey: 'e' } };
    assert.equal((await call(srv.url, 'POST', '/ofrep/v1/evaluate/flags/bad-%FF%FE', ctx)).status, 404);
    assert.equal((await call(srv.url, 'POST', '/ofrep/v1/evaluate/flags/bad-%C3', ctx)).status, 404);
    assert.equal((await call(srv.url, 'POST', '/ofrep/v1/evaluate/flags/bad-%ED%A0%80', ctx)).status, 404);
    const hdr = await call(srv.url, 'POST', '/ofrep/v1/evaluate/flags/g', ctx, { 'x-flipt-namespace': 'n\xff' });
    assert.ok([400, 404].includes(hdr.status), `${hdr.status} ${hdr.text}`);
    const bytes = Buffer.from(await (await fetch(srv.url + '/metrics')).arrayBuffer());
    assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes), 'the exposition is UTF-8');
    const text = bytes.toString('utf8');
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.doesNotMatch(`${lint.stdout}${lint.stderr}`, /parsing error|invalid/i, 'promtool parses it');
    // two keys that differ only in bytes that are not UTF-8 must not print as one series twice
    // (Prometheus drops a duplicate sample): a key outside Flipt's key alphabet cannot be a flag,
    // so it is counted under "(unknown)"
    assert.equal((await call(srv.url, 'POST', '/ofrep/v1/evaluate/flags/bad-%FE', ctx)).status, 404);
    const again = await (await fetch(srv.url + '/metrics')).text();
    const lines = again.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
    const dup = lines.filter((l, i) => lines.indexOf(l) !== i);
    assert.deepEqual(dup, [], 'no series is printed twice');
    assert.doesNotMatch(again, /bad-/);
    assert.match(again, /^edgeflag_unknown_flag_evaluations_total\{namespace="default",flag="\(unknown\)"\} 4$/m);
    assert.match(again, /^flipt_evaluations_errors_total\{namespace="\(unknown\)",flag="\(unknown\)"\} 1$/m);
  } finally {
    await srv.stop();
  }
});
