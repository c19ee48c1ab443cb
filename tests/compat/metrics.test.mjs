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
    await call(srv.url, 'MKCOL', '/api/nope'); // another unknown method: a series of its own
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
    assert.equal(value(/^edgeflag_http_responses_total\{route="unmatched",method="PROPFIND",status="404"\} (\d+)$/m), 1);
    assert.equal(value(/^edgeflag_http_responses_total\{route="unmatched",method="MKCOL",status="404"\} (\d+)$/m), 1);
    assert.equal(value(/^edgeflag_http_request_duration_seconds_count\{route="\/evaluate\/v1\/variant"\} (\d+)$/m), 10);
    assert.equal(value(/^edgeflag_store_writes_total\{operation="flag_create",result="ok"\} (\d+)$/m), 2);
    assert.equal(value(/^edgeflag_store_writes_total\{operation="flag_create",result="error"\} (\d+)$/m), 1);
    assert.ok(value(/^edgeflag_store_write_duration_seconds_count (\d+)$/m) >= 1);
    assert.ok(value(/^edgeflag_snapshot_version\{namespace="default"\} (\d+)$/m) >= 1);
  } finally {
    await srv.stop();
  }
});
