// createUppySigner(): the signRequest of @uppy/aws-s3 6.x, driven here the way 6.3.1's S3mini
// drives it (sign one request, then send it to the answered URL with the answered headers,
// parsing the S3 XML of the control calls), against the real broker and store. The same
// signer under real Uppy 6 in Chromium: tests/browser/uppy6.test.js.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createUppySigner, UploadError } from "../r2-broker.js";
import { startProxies } from "./support/proxy.js";
import * as b from "./support/broker.js";

const MiB = b.MiB;

/** What Uppy 6 hands generateObjectKey: an UppyFile (core's addFile shape). */
function uppyFile(id, name, bytes, type, meta = {}) {
  const data = new File([bytes], name, { type });
  return { id, name, type: type || "application/octet-stream", size: bytes.length, data, meta: { ...meta, name, type } };
}

/** S3mini's send: `data:` answers are read in place, anything else goes over the network. */
async function send(signed, method, { body, contentType } = {}) {
  if (signed.url.startsWith("data:")) {
    return { status: 200, text: decodeURIComponent(signed.url.slice(signed.url.indexOf(",") + 1)), etag: null };
  }
  const headers = { ...(contentType ? { "content-type": contentType } : {}), ...signed.headers };
  const res = await fetch(signed.url, { method, headers, body });
  return { status: res.status, text: await res.text(), etag: res.headers.get("etag") };
}

const tag = (xml, t) => (xml.match(new RegExp(`<${t}>([^<]*)</${t}>`)) ?? [])[1];
const tags = (xml, t) => [...xml.matchAll(new RegExp(`<${t}>([^<]*)</${t}>`, "g"))].map((m) => m[1]);

/** A minimal Uppy event bus (on/emit/getFile/log), for the signer's `uppy` option. */
function fakeUppy(files) {
  const handlers = {};
  return {
    on: (e, f) => (handlers[e] ??= []).push(f),
    emit: (e, ...args) => handlers[e]?.forEach((f) => f(...args)),
    getFile: (id) => files.find((f) => f.id === id),
    log: () => {},
  };
}

/** Uppy 6's multipart flow (S3Uploader) up to part `parts`: create, then parts one after
 * another, sliced with the signer's getChunkSize (Uppy 6's default). */
async function startMultipart(signer, file, parts) {
  const key0 = signer.generateObjectKey(file);
  const created = await signer.signRequest({ method: "POST", key: key0 });
  const init = await send(created, "POST", { contentType: file.type });
  const uploadId = tag(init.text, "UploadId");
  const key = created.key;
  assert.ok(uploadId && key && key !== key0, init.text);
  const chunk = signer.getChunkSize({ size: file.size });
  assert.equal(chunk, Math.max(5 * MiB, Math.ceil(file.size / 10000)), "Uppy 6's default getChunkSize");
  const bytes = Buffer.from(await file.data.arrayBuffer());
  for (let n = 1; n <= parts; n++) {
    const signed = await signer.signRequest({ method: "PUT", key, uploadId, partNumber: n });
    const put = await send(signed, "PUT", { body: bytes.subarray((n - 1) * chunk, n * chunk) });
    assert.equal(put.status, 200, put.text);
    assert.ok(put.etag, "the store answers an ETag");
  }
  return { uploadId, key };
}

test("Uppy 6 signer: a PutObject is the broker's put intent (size, type and SHA-256 pinned); the asset follows upload-success", async () => {
  const { token } = b.newOwner("u6-put");
  const bytes = Buffer.from("hello from uppy 6\n");
  const file = uppyFile("f1", "hello.txt", bytes, "text/plain", { caption: "hi", relativePath: null });
  const uppy = fakeUppy([file]);
  let onAsset;
  const completed = new Promise((resolve) => (onAsset = (a, f) => resolve({ a, f })));
  const signer = createUppySigner({ baseUrl: b.API, getToken: () => token, uppy, onAsset });

  const key0 = signer.generateObjectKey(file);
  const signed = await signer.signRequest({ method: "PUT", key: key0, contentType: "text/plain" });
  assert.notEqual(signed.key, key0, "the broker's key replaces the proposed one");
  assert.equal(signed.headers["content-type"], "text/plain");
  assert.equal(signed.headers["x-amz-checksum-sha256"], b.sha256b64(bytes));
  assert.ok(!("content-length" in signed.headers), "no header a browser refuses");
  const put = await send(signed, "PUT", { body: bytes, contentType: "text/plain" });
  assert.equal(put.status, 200, put.text);
  uppy.emit("upload-success", file, { status: 200 });

  const { a: asset, f } = await completed;
  assert.equal(f, file);
  assert.equal(asset.checksum_sha256, b.sha256b64(bytes));
  assert.deepEqual(asset.metadata, { caption: "hi" }, "Uppy's own meta fields are not stored");
  await b.assertStored(token, asset, bytes, { contentType: "text/plain" });
  await b.assertNothingReserved(token);
});

test("Uppy 6 signer: a 12 MiB multipart upload (3 parts, one presign call) becomes the asset; ListParts lists the parts sent", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("u6-mp");
  const { bytes } = b.makeFile(12 * MiB);
  const file = uppyFile("f2", "big.bin", bytes, "application/octet-stream");
  const getToken = b.countingToken(token);
  const signer = createUppySigner({ baseUrl: p.api, getToken, profile: "small" });

  const half = await startMultipart(signer, file, 2);
  const listed = await send(await signer.signRequest({ method: "GET", key: half.key, uploadId: half.uploadId }), "GET");
  assert.deepEqual(tags(listed.text, "PartNumber"), ["1", "2"]);
  assert.ok(tags(listed.text, "ETag").every((e) => e && !e.includes('"')), listed.text);
  // The rest, as Uppy 6 resumes (after a pause or a reload): part 3, then complete.
  const n3 = await signer.signRequest({ method: "PUT", key: half.key, uploadId: half.uploadId, partNumber: 3 });
  assert.equal((await send(n3, "PUT", { body: bytes.subarray(10 * MiB) })).status, 200);
  const done = await send(await signer.signRequest({ method: "POST", key: half.key, uploadId: half.uploadId }), "POST");

  const assetUrl = tag(done.text, "Location");
  assert.match(assetUrl, new RegExp(`^${p.api}/v1/assets/[0-9a-f-]{36}$`));
  assert.equal(tag(done.text, "Key"), half.key);
  const asset = await b.api(token, "GET", `/v1/assets/${assetUrl.split("/").pop()}`);
  await b.assertStored(token, asset, bytes);
  assert.equal(asset.profile, "small");
  const calls = p.broker.log.map((e) => `${e.method} ${e.path.replace(/[0-9a-f-]{36}/, "{id}")}`);
  assert.deepEqual(calls, [
    "POST /v1/companion/s3/multipart",
    "POST /v1/uploads/{id}/parts", // parts 1 to 3 in one call (part 3's URL is used after the listing)
    "GET /v1/uploads/{id}/parts",
    "POST /v1/uploads/{id}/complete",
  ]);
  assert.deepEqual(p.broker.log[1].body, { part_numbers: [1, 2, 3] });
  assert.deepEqual(p.partPuts(), [1, 2, 3]);
  assert.ok(p.broker.log.every((e) => e.headers.authorization === `Bearer ${token}`));
  assert.equal(getToken.calls, calls.length, "a token per broker call");
  await b.assertNothingReserved(token);
});

test("Uppy 6 signer: quota errors are UploadErrors with the broker's code and message, and reserve nothing", async () => {
  const { owner, token } = b.newOwner("u6-quota");
  await b.api(b.mintToken("admin", { admin: true }), "PUT", `/v1/admin/owners/${encodeURIComponent(owner)}/quota`, { quota_bytes: 1000 });
  const signer = createUppySigner({ baseUrl: b.API, getToken: () => token });
  const small = uppyFile("q1", "a.txt", Buffer.alloc(2000, "x"), "text/plain");
  const big = uppyFile("q2", "b.bin", b.makeFile(7 * MiB).bytes, "application/octet-stream");

  for (const [file, method] of [[small, "PUT"], [big, "POST"]]) {
    const key = signer.generateObjectKey(file);
    await assert.rejects(signer.signRequest({ method, key, contentType: file.type }), (e) => {
      assert.ok(e instanceof UploadError);
      assert.equal(e.code, "quota_exceeded");
      assert.equal(e.status, 403);
      assert.match(e.message, /quota/);
      return true;
    });
  }
  await b.assertNothingReserved(token);
});

test("Uppy 6 signer: AbortMultipartUpload aborts the intent; a failed PUT's intent is released at once", async () => {
  const { token } = b.newOwner("u6-abort");
  const bytes = b.makeFile(12 * MiB).bytes;
  const file = uppyFile("a1", "big.bin", bytes, "application/octet-stream");
  const small = uppyFile("a2", "small.bin", Buffer.alloc(1000, 1), "application/octet-stream");
  const uppy = fakeUppy([file, small]);
  const signer = createUppySigner({ baseUrl: b.API, getToken: () => token, uppy });

  const { uploadId, key } = await startMultipart(signer, file, 1);
  assert.equal((await b.usage(token)).reserved_bytes, 12 * MiB);
  await send(await signer.signRequest({ method: "DELETE", key, uploadId }), "DELETE");
  assert.equal((await b.api(token, "GET", `/v1/uploads/${uploadId}`)).status, "aborted");

  const signed = await signer.signRequest({ method: "PUT", key: signer.generateObjectKey(small), contentType: small.type });
  assert.equal((await b.usage(token)).reserved_bytes, 1000);
  uppy.emit("upload-error", small, new Error("network error"));
  for (let i = 0; i < 50 && (await b.usage(token)).reserved_bytes > 0; i++) await new Promise((r) => setTimeout(r, 20));
  const id = signed.key.split("/").at(-2);
  assert.equal((await b.api(token, "GET", `/v1/uploads/${id}`)).status, "aborted");
  await b.assertNothingReserved(token);
});

test("Uppy 6 signer: a key generateObjectKey did not make, and DeleteObject, are refused with what to do", async () => {
  const signer = createUppySigner({ baseUrl: b.API, token: "x" });
  await assert.rejects(signer.signRequest({ method: "PUT", key: "abc-file.txt", contentType: "text/plain" }),
    (e) => e.code === "invalid_file" && /generateObjectKey/.test(e.message));
  await assert.rejects(signer.signRequest({ method: "DELETE", key: "abc" }), (e) => e instanceof UploadError);
  assert.throws(() => createUppySigner({ getToken: () => "x" }), /baseUrl/);
  assert.equal(signer.getChunkSize({ size: 100 * 1024 * MiB }), Math.ceil((100 * 1024 * MiB) / 10000));
});
