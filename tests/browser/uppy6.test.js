// Uppy 6 (@uppy/core + @uppy/aws-s3 6.3.1, npm `latest`), which sends no custom headers in
// Companion mode, through the client's createUppySigner() (its `signRequest` option), from a
// page on another origin: put and multipart files become verified assets, a pause lists the
// parts and resumes, removing a file aborts it and releases its reservation, quota errors
// reach Uppy with the broker's message, and every broker call carries the user's token.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as h from "./support/harness.js";

const env = h.setup();

// Bundled once per file, served by the file's static server (set up by h.setup()'s hook).
const bundled = h.bundle(`
  export { default as Uppy } from "@uppy/core";
  export { default as AwsS3 } from "@uppy/aws-s3";
  export { createUppySigner } from "../../clients/js/r2-broker.js";
`);

/** A page with a fresh Uppy 6 for a fresh owner (h.uppyPage), once its bundle is served. */
async function uppyPage(t, label, opts) {
  env.server.file("/uppy6/uppy6.mjs", await bundled, "text/javascript; charset=utf-8");
  return h.uppyPage(t, env.browser, env.server, "uppy6.html", label, opts);
}

/** Serves `bytes` at /data/<name> and adds it to the page's Uppy; resolves with its file id. */
const add = (page, name, bytes, type) => h.addToUppy(page, env.server, name, bytes, type);

const broker = (recorder) => recorder.log.filter((e) => e.to === "api");
const calls = (recorder) => broker(recorder).map((e) => `${e.method} ${e.path.replace(/[0-9a-f-]{36}/, "{id}")}`);

test("Uppy 6: a text file, a typeless .csv and a 12 MiB multipart file become assets with their bytes", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "u6-files");
  const files = [
    { name: "hello.txt", bytes: Buffer.from("hello from uppy 6\n"), type: "text/plain", want: "text/plain" },
    { name: "table.csv", bytes: Buffer.from("a,b\n1,2\n"), type: "", want: "text/csv" },
    { name: "big.bin", bytes: h.makeFile(12 * h.MiB).bytes, type: "application/octet-stream", want: "application/octet-stream" },
  ];
  for (const f of files) await add(page, f.name, f.bytes, f.type);

  const { ok, failed } = await h.uppyUpload(page);

  assert.deepEqual({ ok, failed }, { ok: ["big.bin", "hello.txt", "table.csv"], failed: [] });
  // Every file is an asset as soon as Uppy is done: the signer completes single PUTs on
  // upload-success (no waiting for the broker's confirmer).
  await page.waitForFunction(() => assets.length === 3);
  const { items } = await h.api(token, "GET", "/v1/assets");
  assert.equal(items.length, 3);
  for (const f of files) {
    const asset = items.find((a) => a.filename === f.name);
    assert.ok(asset, `no asset for ${f.name}`);
    await h.assertStored(token, asset, f.bytes, { contentType: f.want });
    if (f.bytes.length < 1000) assert.equal(asset.checksum_sha256, h.sha256b64(f.bytes), "the store checked the SHA-256");
  }
  const big = items.find((a) => a.filename === "big.bin");
  const success = await page.evaluate(() => events.filter((e) => e.type === "success"));
  assert.equal(success.find((e) => e.name === "big.bin").uploadURL, `${h.API}/v1/assets/${big.id}`);
  assert.deepEqual(calls(recorder).sort(), [
    "POST /v1/companion/s3/multipart",
    "POST /v1/uploads",
    "POST /v1/uploads",
    "POST /v1/uploads/{id}/complete",
    "POST /v1/uploads/{id}/complete",
    "POST /v1/uploads/{id}/complete",
    "POST /v1/uploads/{id}/parts",
  ].sort(), "the broker's own API, parts presigned in one call");
  assert.ok(broker(recorder).every((e) => e.headers.authorization === `Bearer ${token}`), "the user's JWT on every broker call");
  assert.deepEqual(recorder.parts().map((e) => e.part).sort(), [1, 2, 3]);
  const stored = recorder.log.filter((e) => e.to === "store");
  assert.equal(stored.length, 5, "only the 2 PUTs and 3 part PUTs reach the store");
  await h.assertNothingReserved(token);
});

test("Uppy 6: 5 × 12 MiB files (throughput in the diagnostics)", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "u6-many");
  const files = Array.from({ length: 5 }, (_, i) => ({ name: `u${i}.bin`, bytes: h.makeFile(12 * h.MiB).bytes }));
  for (const f of files) await add(page, f.name, f.bytes, "application/octet-stream");

  const run = await h.uppyUpload(page);

  assert.equal(run.ok.length, 5);
  assert.equal(recorder.parts().filter((e) => e.status === 200).length, 15);
  const { items } = await h.api(token, "GET", "/v1/assets");
  for (const f of files) await h.assertStored(token, items.find((a) => a.filename === f.name), f.bytes);
  t.diagnostic(`Uppy 6: 5 × 12 MiB (multipart, 3 parts each, one at a time per file) in ${(run.ms / 1000).toFixed(2)} s: ${(60 / (run.ms / 1000)).toFixed(1)} MiB/s`);
});

/** A 12 MiB file mid-upload, part 1 in the store and the others held (h.uppyMidMultipart). */
const midMultipart = (page, recorder, name) => h.uppyMidMultipart(page, env.server, recorder, name);

test("Uppy 6: pause mid-multipart, then resume: the parts are listed and only the missing ones sent", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "u6-pause");
  const { bytes, id, uploadId, release } = await midMultipart(page, recorder, "pause.bin");

  await page.evaluate((fid) => uppy.pauseResume(fid), id);
  await release();
  const listed = recorder.next((e) => e.method === "GET" && e.path === `/v1/uploads/${uploadId}/parts`);
  const from = recorder.log.length;
  await page.evaluate((fid) => uppy.pauseResume(fid), id);
  assert.equal((await listed).status, 200);
  await page.waitForFunction(() => events.some((e) => e.type === "success"));

  const resumed = recorder.log.slice(from).filter((e) => e.to === "store" && e.status === 200).map((e) => e.part);
  assert.deepEqual(resumed.sort(), [2, 3]);
  assert.equal(recorder.parts(1).length, 1, "part 1 was sent once");
  const [asset] = (await h.api(token, "GET", "/v1/assets")).items;
  await h.assertStored(token, asset, bytes);
  await h.assertNothingReserved(token);
});

test("Uppy 6: removing a file mid-upload aborts it and releases its reservation", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "u6-remove");
  const { id, uploadId, release } = await midMultipart(page, recorder, "remove.bin");
  assert.equal((await h.usage(token)).reserved_bytes, 12 * h.MiB);

  const deleted = recorder.next((e) => e.method === "DELETE" && e.path === `/v1/uploads/${uploadId}`);
  await page.evaluate((fid) => uppy.removeFile(fid), id);
  assert.equal((await deleted).status, 204);
  await release();

  assert.equal((await h.api(token, "GET", `/v1/uploads/${uploadId}`)).status, "aborted");
  await h.assertNothingReserved(token);
  assert.deepEqual((await h.api(token, "GET", "/v1/assets")).items, []);
});

test("Uppy 6: quota errors reach Uppy with the broker's message, for a PUT and a multipart file", async (t) => {
  const { page, owner, token } = await uppyPage(t, "u6-quota");
  await h.api(h.mintToken("admin", { admin: true }), "PUT", `/v1/admin/owners/${encodeURIComponent(owner)}/quota`, { quota_bytes: 1000 });
  // What the broker says to such a request, asked directly.
  const direct = await fetch(`${h.API}/v1/uploads`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ filename: "big.txt", content_type: "text/plain", size: 2000 }),
  });
  const { error } = await direct.json();
  assert.equal(direct.status, 403);
  assert.equal(error.code, "quota_exceeded");
  await add(page, "big.txt", Buffer.alloc(2000, "x"), "text/plain");
  await add(page, "huge.bin", h.makeFile(7 * h.MiB).bytes, "application/octet-stream");

  const result = (await h.uppyUpload(page)).failed.map((f) => f.name).sort();

  assert.deepEqual(result, ["big.txt", "huge.bin"]);
  const shown = await page.evaluate(() => events.filter((e) => e.type === "error").map((e) => [e.name, e.code, e.message]));
  assert.deepEqual(shown.sort(), [["big.txt", "quota_exceeded", error.message], ["huge.bin", "quota_exceeded", error.message]]);
  // What Uppy tells the user (its informer): "Failed to upload …", our message as details.
  const info = await page.evaluate(() => uppy.getState().info.map((i) => [i.message, i.details]));
  assert.ok(info.some(([m, d]) => /^Failed to upload (big\.txt|huge\.bin)/.test(m) && d === error.message), JSON.stringify(info));
  await h.assertNothingReserved(token);
});
