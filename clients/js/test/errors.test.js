// Errors: the broker's code and message surfaced, 4xx not retried, 5xx / network / expiry retried.

import { test } from "node:test";
import assert from "node:assert/strict";
import { upload, request, UploadError } from "../r2-broker.js";
import { startProxies } from "./support/proxy.js";
import * as b from "./support/broker.js";

test("errors: a 415 from the profile is surfaced with the broker's code and message, and not retried", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("415");
  const getToken = b.countingToken(token);
  const { file } = b.makeFile(10, "cat.png", "image/png");

  const err = await upload(file, { baseUrl: p.api, getToken, profile: "text" }).catch((e) => e);

  assert.ok(err instanceof UploadError);
  assert.equal(err.code, "unsupported_content_type");
  assert.equal(err.status, 415);
  assert.match(err.message, /image\/png/);
  assert.match(err.requestId, /^[0-9a-f-]{36}$/);
  assert.equal(err.retryable, false);
  assert.equal(p.broker.log.length, 1, "one request, no retry");
  assert.equal(getToken.calls, 1);
  await b.assertNothingReserved(token);
});

test("errors: quota_exceeded is surfaced and not retried", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { owner, token } = b.newOwner("quota");
  await b.api(b.mintToken("js-admin", { admin: true }), "PUT", `/v1/admin/owners/${encodeURIComponent(owner)}/quota`, {
    quota_bytes: 1000,
  });
  const { file } = b.makeFile(5000, "big.txt", "text/plain");

  const err = await upload(file, { baseUrl: p.api, token }).catch((e) => e);

  assert.equal(err.code, "quota_exceeded");
  assert.equal(err.status, 403);
  assert.ok(err.message.length > 0);
  assert.equal(p.broker.log.length, 1);
});

test("errors: a 503 with Retry-After is retried after it, and reserves nothing twice", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("503");
  const { file, bytes } = b.makeFile(1000, "a.txt", "text/plain");
  let n = 0;
  p.broker.hook = (e) => {
    if (e.method === "POST" && e.path.endsWith("/complete") && n++ === 0) {
      const body = JSON.stringify({ error: { code: "unavailable", message: "service unavailable", request_id: "r1" } });
      return { status: 503, headers: { "content-type": "application/json", "retry-after": "1" }, body };
    }
  };
  const retries = [];
  const t0 = Date.now();

  const asset = await upload(file, { baseUrl: p.api, token, retryDelay: 10, onRetry: (r) => retries.push(r) });

  const completes = p.brokerCalls("POST", /\/complete$/);
  assert.equal(completes.length, 2);
  assert.equal(completes[0].headers["idempotency-key"], completes[1].headers["idempotency-key"], "same key on the retry");
  assert.equal(retries.length, 1);
  assert.equal(retries[0].error.code, "unavailable");
  assert.ok(retries[0].delay >= 1000 && Date.now() - t0 >= 1000, "waited for Retry-After");
  await b.assertStored(token, asset, bytes);
  const u = await b.assertNothingReserved(token);
  assert.equal(u.object_count, 1);
});

test("errors: a create whose answer is lost is retried with the same Idempotency-Key and reserves once", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("lost");
  const { file, bytes } = b.makeFile(1000, "a.txt", "text/plain");
  let n = 0;
  p.broker.hook = (e) => (e.path === "/v1/uploads" && n++ === 0 ? { drop: true } : undefined);

  const asset = await upload(file, { baseUrl: p.api, token, retryDelay: 10 });

  const creates = p.brokerCalls("POST", /^\/v1\/uploads$/);
  assert.equal(creates.length, 2);
  assert.equal(creates[0].headers["idempotency-key"], creates[1].headers["idempotency-key"]);
  await b.assertStored(token, asset, bytes);
  const u = await b.assertNothingReserved(token);
  assert.deepEqual([u.object_count, u.used_bytes], [1, 1000]);
});

test("errors: a connection cut during a part PUT is retried", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("cut");
  const { file, bytes } = b.makeFile(12 * b.MiB, "a.bin");
  let cut = false;
  p.store.hook = (e) => (e.query.get("partNumber") === "1" && !cut ? ((cut = true), { destroy: true }) : undefined);

  const asset = await upload(file, { baseUrl: p.api, token, profile: "small", retryDelay: 10 });

  assert.deepEqual(p.partPuts().filter((n) => n === 1).length, 2);
  await b.assertStored(token, asset, bytes);
});

test("errors: a store 4xx that cannot succeed is not retried; the intent is aborted", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("sig");
  const { file } = b.makeFile(1000, "a.txt", "text/plain");
  const xml = "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>";
  p.store.hook = () => ({ status: 403, headers: { "content-type": "application/xml" }, body: xml });

  const err = await upload(file, { baseUrl: p.api, token, retryDelay: 10 }).catch((e) => e);

  assert.equal(err.code, "store_error");
  assert.equal(err.storeCode, "SignatureDoesNotMatch");
  assert.equal(p.store.log.length, 1);
  assert.equal((await b.api(token, "GET", `/v1/uploads/${err.uploadId}`)).status, "aborted");
  await b.assertNothingReserved(token);
});

test("errors: a put URL that really expired (2 s TTL) is replaced by a new intent; the old one is released", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("expired");
  const { file, bytes } = b.makeFile(1000, "a.txt", "text/plain");
  let n = 0;
  p.store.hook = () => (n++ === 0 ? { delay: 2600 } : undefined); // the store sees it after X-Amz-Expires

  const asset = await upload(file, { baseUrl: p.api, token, profile: "short" });

  const creates = p.brokerCalls("POST", /^\/v1\/uploads$/);
  assert.equal(creates.length, 2);
  assert.equal(p.brokerCalls("DELETE", /^\/v1\/uploads\//).length, 1);
  await b.assertStored(token, asset, bytes);
  const u = await b.assertNothingReserved(token);
  assert.equal(u.object_count, 1);
});

test("errors: request() surfaces broker errors too", async () => {
  const { token } = b.newOwner("req");
  const err = await request({ baseUrl: b.API, token }, "GET", "/v1/assets/00000000-0000-4000-8000-000000000000").catch((e) => e);
  assert.equal(err.code, "not_found");
  assert.equal(err.status, 404);
  const usage = await request({ baseUrl: b.API, token }, "GET", "/v1/usage");
  assert.equal(usage.reserved_bytes, 0);
});

test("errors: a 401 is retried once when getToken() gives a new token, never with the same one", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("401");
  const { file, bytes } = b.makeFile(100, "a.txt", "text/plain");

  const rotating = b.countingToken("expired.jwt.token", token);
  const asset = await upload(file, { baseUrl: p.api, getToken: rotating });
  await b.assertStored(token, asset, bytes);
  assert.equal(p.brokerCalls("POST", /^\/v1\/uploads$/).length, 2);

  p.reset();
  const err = await upload(file, { baseUrl: p.api, token: "still.bad.token" }).catch((e) => e);
  assert.equal(err.code, "unauthorized");
  assert.equal(err.status, 401);
  assert.equal(p.broker.log.length, 1, "the same token is not sent again");
});
