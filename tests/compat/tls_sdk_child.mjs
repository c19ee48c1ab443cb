// Run by tls.test.mjs in its own Node process (so NODE_EXTRA_CA_CERTS applies to the global fetch):
// evaluates two flags of the HTTPS server at argv[2] with flipt-client-js and with the OpenFeature
// OFREP provider, and prints one JSON line with the answers or the errors. Exits 0 either way.
import { FliptClient } from '@flipt-io/flipt-client-js';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const url = process.argv[2];
const out = {};
const why = (e) => `${e?.message ?? e} ${e?.cause?.code ?? ''} ${e?.cause?.message ?? ''}`.trim();
const log = console.log;
console.log = () => {}; // the WASM engine's chatter; our line is printed last
try {
  const c = await FliptClient.init({ url, namespace: 'default' });
  out.engine = {
    variant: c.evaluateVariant({ flagKey: 'checkout', entityId: 'u1', context: {} }).variantKey,
    boolean: c.evaluateBoolean({ flagKey: 'dark', entityId: 'u1', context: {} }).enabled,
  };
  c.close?.();
} catch (e) {
  out.engineError = why(e);
}
try {
  const provider = new OFREPProvider({ baseUrl: url });
  await OpenFeature.setProviderAndWait(provider).catch((e) => (out.ofrepCause = why(e)));
  const client = OpenFeature.getClient();
  const v = await client.getStringDetails('checkout', 'fallback', { targetingKey: 'u1' });
  const b = await client.getBooleanDetails('dark', false, { targetingKey: 'u1' });
  out.ofrep = v.value === 'fallback' ? { variant: 'fallback', error: v.errorCode } : { variant: v.value, boolean: b.value, reason: v.reason };
  if (v.value === 'fallback') out.ofrepCause = `${out.ofrepCause ?? ''} ${v.errorMessage ?? ''}`.trim();
  await OpenFeature.close();
} catch (e) {
  out.ofrepError = why(e);
}
log(JSON.stringify(out));
