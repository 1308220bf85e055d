// The browser path: XMLHttpRequest with upload progress events (a node:http shim here;
// the Chromium tests drive the real thing).

import { test } from "node:test";
import assert from "node:assert/strict";
import { NodeXHR } from "./support/xhr.js";
import { upload } from "../r2-broker.js";
import { startProxies } from "./support/proxy.js";
import * as b from "./support/broker.js";

globalThis.XMLHttpRequest = NodeXHR; // this file runs in its own process

test("xhr: a multipart upload reports byte progress within parts, not only at their ends", async () => {
  const { token } = b.newOwner("xhr");
  const { file, bytes } = b.makeFile(12 * b.MiB, "v.mp4", "video/mp4");
  const events = [];
  NodeXHR.instances = [];

  const asset = await upload(file, { baseUrl: b.API, token, profile: "small", progressInterval: 0, onProgress: (e) => events.push(e) });

  assert.equal(NodeXHR.instances.length, 3, "one XHR per part");
  b.assertProgress(events, bytes.length);
  const inside = events.filter((e) => e.loaded % (5 * b.MiB) !== 0 && e.loaded !== bytes.length);
  assert.ok(inside.length >= 10, `progress inside parts: ${events.length} events`);
  await b.assertStored(token, asset, bytes);
});

test("xhr: a put with its checksum, and abort cancels the XHR and releases the reservation", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("xhr-abort");
  const { file, bytes } = b.makeFile(300_000, "a.txt", "text/plain");
  const asset = await upload(file, { baseUrl: p.api, token });
  assert.equal(asset.checksum_sha256, b.sha256b64(bytes));

  const ac = new AbortController();
  p.store.hook = () => (ac.abort(), { hang: true });
  NodeXHR.instances = [];
  const err = await upload(b.makeFile(300_000, "b.txt", "text/plain").file, { baseUrl: p.api, token, signal: ac.signal }).catch((e) => e);
  assert.equal(err.code, "aborted");
  assert.equal(NodeXHR.instances.at(-1).aborted, true);
  await b.assertNothingReserved(token);
});

test("xhr: a PUT that makes no progress for stallTimeout is cut and retried", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("stall");
  const { file, bytes } = b.makeFile(1000, "a.txt", "text/plain");
  let n = 0;
  p.store.hook = () => (n++ === 0 ? { hang: true } : undefined);
  const retries = [];

  const asset = await upload(file, { baseUrl: p.api, token, stallTimeout: 300, retryDelay: 10, onRetry: (r) => retries.push(r) });

  assert.equal(p.store.log.length, 2);
  assert.equal(retries[0].error.code, "network_error");
  assert.match(retries[0].error.message, /no progress/);
  await b.assertStored(token, asset, bytes);
});
