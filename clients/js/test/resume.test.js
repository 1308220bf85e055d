// Abort (releases the reservation), pause and resume (only the missing parts are sent).

import { test } from "node:test";
import assert from "node:assert/strict";
import { upload, memoryStore } from "../r2-broker.js";
import { startProxies } from "./support/proxy.js";
import * as b from "./support/broker.js";

const at = (n) => (e) => e.query.get("partNumber") === String(n);

test("abort: an AbortSignal mid-multipart cancels, aborts the intent and releases the reservation", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("abort");
  const { file } = b.makeFile(12 * b.MiB, "a.bin");
  const ac = new AbortController();
  const store = mapStore();
  p.store.hook = (e) => (at(2)(e) ? (ac.abort(), { hang: true }) : undefined);

  const err = await upload(file, { baseUrl: p.api, token, profile: "small", partConcurrency: 1, signal: ac.signal, resumeStore: store }).catch((e) => e);

  assert.equal(err.code, "aborted");
  assert.equal((await b.api(token, "GET", `/v1/uploads/${err.uploadId}`)).status, "aborted");
  assert.equal(p.brokerCalls("DELETE", /^\/v1\/uploads\//).length, 1);
  await b.assertNothingReserved(token);
  assert.equal(store.map.size, 0, "no resume record left");
});

test("abort: while the create is in flight, the intent it made is found by its Idempotency-Key and aborted", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("abort-create");
  const { file } = b.makeFile(1000, "a.txt", "text/plain");
  const ac = new AbortController();
  let n = 0;
  p.broker.hook = (e) => (e.path === "/v1/uploads" && n++ === 0 ? { drop: true, afterUpstream: () => ac.abort() } : undefined);

  const err = await upload(file, { baseUrl: p.api, token, signal: ac.signal }).catch((e) => e);

  assert.equal(err.code, "aborted");
  const creates = p.brokerCalls("POST", /^\/v1\/uploads$/);
  assert.equal(creates.length, 2);
  assert.equal(creates[0].headers["idempotency-key"], creates[1].headers["idempotency-key"]);
  assert.equal(p.store.log.length, 0);
  await b.assertNothingReserved(token);
});

test("abort: a signal already aborted sends nothing", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("pre");
  const err = await upload(b.makeFile(10).file, { baseUrl: p.api, token, signal: AbortSignal.abort() }).catch((e) => e);
  assert.equal(err.code, "aborted");
  assert.equal(p.broker.log.length, 0);
});

test("resume: a paused multipart upload is picked up by a new upload() that sends only the missing parts", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("resume");
  const { bytes } = b.makeFile(12 * b.MiB);
  const file = () => new File([bytes], "clip.mov", { type: "video/quicktime", lastModified: 1_700_000_000_000 });
  const store = mapStore();
  const pause = new AbortController();
  p.store.hook = (e) => (at(2)(e) ? (pause.abort(), { hang: true }) : undefined);
  const opts = { baseUrl: p.api, token, profile: "small", partConcurrency: 1, resumeStore: store };

  // 1. Part 1 is sent, then the app pauses (or the page goes away) during part 2.
  const err = await upload(file(), { ...opts, pauseSignal: pause.signal }).catch((e) => e);
  assert.equal(err.code, "paused");
  assert.equal((await b.api(token, "GET", `/v1/uploads/${err.uploadId}`)).status, "pending", "the intent is kept");
  assert.deepEqual(p.partPuts(), [1, 2]);
  assert.equal((await b.usage(token)).reserved_bytes, bytes.length);
  const [record] = store.map.values();
  assert.deepEqual([record.upload_id, record.method, record.part_count], [err.uploadId, "multipart", 3]);

  // 2. After the "restart": the same file again, with the same store.
  p.reset();
  const events = [];
  const asset = await upload(file(), { ...opts, onProgress: (e) => events.push(e) });

  assert.equal(p.brokerCalls("POST", /^\/v1\/uploads$/).length, 0, "no new intent");
  assert.equal(p.brokerCalls("GET", /\/parts$/).length, 1, "asked the broker which parts the store has");
  assert.deepEqual(p.partPuts(), [2, 3], "only the missing parts");
  assert.equal(events[0].loaded, 0);
  assert.equal(events[1].loaded, 5 * b.MiB, "the stored part counts as sent");
  b.assertProgress(events, bytes.length);
  assert.equal((await b.api(token, "GET", `/v1/uploads/${err.uploadId}`)).status, "completed");
  await b.assertStored(token, asset, bytes);
  await b.assertNothingReserved(token);
  assert.equal(store.map.size, 0, "the record is gone once complete");
});

test("resume: after the network stayed down past every retry, the intent is kept and resumed later", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("down");
  const { bytes } = b.makeFile(12 * b.MiB);
  const file = () => new File([bytes], "x.bin", { lastModified: 1 });
  const store = mapStore();
  p.store.hook = (e) => (at(1)(e) ? undefined : { destroy: true });
  const opts = { baseUrl: p.api, token, profile: "small", partConcurrency: 1, resumeStore: store, retries: 2, retryDelay: 5 };

  const err = await upload(file(), opts).catch((e) => e);
  assert.equal(err.code, "network_error");
  assert.equal(err.retryable, true);
  assert.equal((await b.api(token, "GET", `/v1/uploads/${err.uploadId}`)).status, "pending");

  p.reset();
  const asset = await upload(file(), opts);
  assert.deepEqual(p.partPuts(), [2, 3]);
  await b.assertStored(token, asset, bytes);
  await b.assertNothingReserved(token);
});

test("resume: a put whose PUT finished before the restart is completed without sending it again", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("put-resume");
  const { bytes } = b.makeFile(3000);
  const file = () => new File([bytes], "note.txt", { type: "text/plain", lastModified: 2 });
  const store = memoryStore();
  const pause = new AbortController();
  p.broker.hook = (e) => (e.path.endsWith("/complete") ? (pause.abort(), { hang: true }) : undefined);
  const opts = { baseUrl: p.api, token, resumeStore: store };

  const err = await upload(file(), { ...opts, pauseSignal: pause.signal }).catch((e) => e);
  assert.equal(err.code, "paused");

  p.reset();
  const asset = await upload(file(), opts);
  assert.equal(p.store.log.length, 0, "the bytes were not sent again");
  assert.equal(p.brokerCalls("POST", /^\/v1\/uploads$/).length, 0);
  await b.assertStored(token, asset, bytes);
  await b.assertNothingReserved(token);
});

test("resume: a record whose intent was aborted meanwhile starts a fresh upload", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("stale");
  const { bytes } = b.makeFile(12 * b.MiB);
  const file = () => new File([bytes], "y.bin", { lastModified: 3 });
  const store = mapStore();
  const pause = new AbortController();
  p.store.hook = (e) => (at(2)(e) ? (pause.abort(), { hang: true }) : undefined);
  const opts = { baseUrl: p.api, token, profile: "small", partConcurrency: 1, resumeStore: store };
  const err = await upload(file(), { ...opts, pauseSignal: pause.signal }).catch((e) => e);
  await b.api(token, "DELETE", `/v1/uploads/${err.uploadId}`);

  p.reset();
  const asset = await upload(file(), opts);
  assert.equal(p.brokerCalls("POST", /^\/v1\/uploads$/).length, 1, "a new intent");
  assert.deepEqual(p.partPuts().sort(), [1, 2, 3]);
  await b.assertStored(token, asset, bytes);
  await b.assertNothingReserved(token);
});

/** A resume store of the test's own (any get/set/remove store plugs in), open to inspection. */
function mapStore() {
  const map = new Map();
  return { map, get: async (k) => map.get(k), set: async (k, v) => void map.set(k, v), remove: async (k) => void map.delete(k) };
}
