// multipart uploads: part plan from the intent, parts in parallel, URL refresh, ETag checks.

import { test } from "node:test";
import assert from "node:assert/strict";
import { upload, UploadError } from "../r2-broker.js";
import { startProxies } from "./support/proxy.js";
import * as b from "./support/broker.js";

const EXPIRED_XML =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>';

test("multipart: a 12 MiB file on a low-threshold profile goes up in 3 parts with monotonic progress", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("mp");
  const { file, bytes } = b.makeFile(12 * b.MiB, "video.mp4", "video/mp4");
  const events = [];

  const asset = await upload(file, { baseUrl: p.api, token, profile: "small", onProgress: (e) => events.push(e) });

  const create = p.brokerCalls("POST", /^\/v1\/uploads$/);
  assert.equal(create.length, 1);
  assert.equal(create[0].body.checksum_sha256, undefined, "no checksum above checksumMaxSize");
  assert.deepEqual(p.brokerCalls("POST", /\/parts$/).map((e) => e.body.part_numbers), [[1, 2, 3]]);
  assert.deepEqual(p.partPuts().sort(), [1, 2, 3]);
  const [done] = p.brokerCalls("POST", /\/complete$/);
  assert.deepEqual(done.body.parts.map((x) => x.part_number), [1, 2, 3]);
  assert.ok(done.body.parts.every((x) => /^"[0-9a-f]+"$/.test(x.etag)), "part ETags read from the PUT answers");
  b.assertProgress(events, bytes.length);
  assert.ok(events.length >= 4, "0, then each part");
  await b.assertStored(token, asset, bytes, { contentType: "video/mp4" });
  await b.assertNothingReserved(token);
});

test("multipart: at most 6 parts are in flight at once", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("six");
  const { file, bytes } = b.makeFile(8 * 5 * b.MiB - 1, "big.bin"); // 8 parts
  p.store.hook = p.store.barrier(6, 500); // each part waits until 6 are in flight

  const asset = await upload(file, { baseUrl: p.api, token, profile: "small" });

  assert.equal(p.partPuts().length, 8);
  assert.equal(p.store.maxInflight, 6);
  await b.assertStored(token, asset, bytes);
});

test("multipart: a part URL the store calls expired is replaced by a fresh one", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("refresh");
  const { file, bytes } = b.makeFile(12 * b.MiB, "a.bin");
  let answered = false;
  p.store.hook = (e) => {
    if (e.query.get("partNumber") === "2" && !answered) {
      answered = true; // what s3s / R2 answer for a presigned URL past X-Amz-Expires
      return { status: 403, headers: { "content-type": "application/xml" }, body: EXPIRED_XML };
    }
  };

  const asset = await upload(file, { baseUrl: p.api, token, profile: "small", partConcurrency: 1 });

  assert.deepEqual(p.brokerCalls("POST", /\/parts$/).map((e) => e.body.part_numbers), [[1, 2, 3], [2]]);
  assert.deepEqual(p.partPuts(), [1, 2, 2, 3]);
  await b.assertStored(token, asset, bytes);
});

test("multipart: a store CORS rule that hides ETag fails at once with an actionable error and releases the quota", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("etag");
  const { file } = b.makeFile(12 * b.MiB, "a.bin");
  p.store.hook = () => ({ stripResponseHeaders: ["etag"] });

  const err = await upload(file, { baseUrl: p.api, token, profile: "small", partConcurrency: 1 }).catch((e) => e);

  assert.ok(err instanceof UploadError);
  assert.equal(err.code, "etag_not_exposed");
  assert.match(err.message, /ExposeHeaders/);
  assert.deepEqual(p.partPuts(), [1], "stopped at the first part");
  const status = await b.api(token, "GET", `/v1/uploads/${err.uploadId}`);
  assert.equal(status.status, "aborted");
  await b.assertNothingReserved(token);
});

test("multipart: a 7 MiB file (checksum-sized, above the profile's threshold) goes as one checksummed put", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("checksummed");
  const { file, bytes } = b.makeFile(7 * b.MiB, "seven.bin");

  const asset = await upload(file, { baseUrl: p.api, token, profile: "small" });

  const creates = p.brokerCalls("POST", /^\/v1\/uploads$/);
  assert.equal(creates.length, 1, "one create: the broker picks put for a checksum");
  assert.ok(creates[0].body.checksum_sha256 && !creates[0].body.method);
  assert.deepEqual(p.partPuts(), [], "no parts");
  assert.equal(asset.checksum_sha256, creates[0].body.checksum_sha256, "the store checked it");
  await b.assertStored(token, asset, bytes);
  await b.assertNothingReserved(token);
});
