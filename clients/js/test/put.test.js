// put uploads: checksum, progress, a token per request, the asset and its bytes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { upload, memoryStore } from "../r2-broker.js";
import { startProxies } from "./support/proxy.js";
import * as b from "./support/broker.js";

test("put: a small file is sent with its SHA-256 and becomes an asset with the same bytes", async () => {
  const { token } = b.newOwner("put");
  const { file, bytes } = b.makeFile(100_000, "hello.txt", "text/plain");
  const events = [];

  const asset = await upload(file, { baseUrl: b.API, getToken: () => token, onProgress: (p) => events.push(p) });

  assert.equal(asset.filename, "hello.txt");
  assert.equal(asset.content_type, "text/plain");
  assert.equal(asset.checksum_sha256, b.sha256b64(bytes), "the store checked the declared SHA-256");
  await b.assertStored(token, asset, bytes, { contentType: "text/plain" });
  b.assertProgress(events, bytes.length);
  const u = await b.assertNothingReserved(token);
  assert.deepEqual([u.used_bytes, u.object_count], [bytes.length, 1]);
});

test("put: getToken is called once per broker request and each request carries its token", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { owner, token } = b.newOwner("tokens");
  const rotated = [token, b.mintToken(owner), b.mintToken(owner)];
  const getToken = b.countingToken(...rotated);
  const { file, bytes } = b.makeFile(2048, "a.bin");

  const asset = await upload(file, { baseUrl: p.api, getToken, metadata: { album: "x" } });

  const calls = p.broker.log;
  assert.deepEqual(calls.map((e) => `${e.method} ${e.path.replace(/[0-9a-f-]{36}/, "{id}")}`), [
    "POST /v1/uploads",
    "POST /v1/uploads/{id}/complete",
  ]);
  assert.equal(getToken.calls, calls.length);
  calls.forEach((e, i) => assert.equal(e.headers.authorization, `Bearer ${rotated[i % 3]}`));
  assert.ok(calls[0].headers["idempotency-key"] && calls[1].headers["idempotency-key"], "Idempotency-Key on create and complete");
  assert.equal(calls[0].body.checksum_sha256, b.sha256b64(bytes));
  assert.equal(p.store.log.length, 1, "one PUT to the store");
  assert.deepEqual(asset.metadata, { album: "x" });
  await b.assertStored(token, asset, bytes);
});

test("put: a zero-byte file and a type guessed from the extension", async () => {
  const { token } = b.newOwner("empty");
  const empty = new File([], "empty.txt", { type: "" });
  const events = [];

  const asset = await upload(empty, { baseUrl: b.API, token, resumeStore: memoryStore(), onProgress: (e) => events.push(e) });

  assert.equal(asset.size, 0);
  assert.equal(asset.content_type, "text/plain");
  assert.deepEqual(events, [{ loaded: 0, total: 0 }]);
  await b.assertStored(token, asset, Buffer.alloc(0));
});

test("put: an upload into a collection is listed in it and counted in its usage", async () => {
  const { token } = b.newOwner("coll");
  const shoot = await b.api(token, "POST", "/v1/collections", { name: "Shoot", max_objects: 1 });
  const { file, bytes } = b.makeFile(4096, "one.jpg", "image/jpeg");

  const asset = await upload(file, { baseUrl: b.API, getToken: () => token, collection: shoot.id });

  assert.equal(asset.collection, shoot.id);
  assert.equal(asset.state, "ready");
  const got = await b.api(token, "GET", `/v1/collections/${shoot.id}`);
  assert.deepEqual(got.usage, { used_bytes: bytes.length, used_objects: 1, reserved_bytes: 0, reserved_objects: 0 });
  // Full now: the next one is refused as over quota, before any byte moves.
  const { file: second } = b.makeFile(10, "two.jpg", "image/jpeg");
  await assert.rejects(upload(second, { baseUrl: b.API, getToken: () => token, collection: shoot.id }), (e) => e.code === "quota_exceeded");
});
