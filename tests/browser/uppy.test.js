// Uppy 5 unchanged (the uppy@5.2.4 bundle: @uppy/aws-s3 5.1 in Companion mode) against the
// broker's /v1/companion routes, from a page on another origin: put and multipart files become
// verified assets, pause/resume lists parts, removing a file aborts it, a quota error is shown
// with the broker's message. Broker-side checks as in client.test.js.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as h from "./support/harness.js";

const env = h.setup();

/** A page with a fresh Uppy for a fresh owner (h.uppyPage). */
const uppyPage = (t, label, opts) => h.uppyPage(t, env.browser, env.server, "uppy.html", label, opts);

/** Serves `bytes` at /data/<name> and adds it to the page's Uppy; resolves with its file id. */
const add = (page, name, bytes, type) => h.addToUppy(page, env.server, name, bytes, type);

/** The owner's assets once there are `n` (single PUTs become assets when the broker's
 * confirmer finds the object: no call comes from Uppy after them). */
function assetsOnce(token, n, ms = 30_000) {
  let items = [];
  const probe = async () => {
    ({ items } = await h.api(token, "GET", "/v1/assets"));
    return items.length >= n && items;
  };
  return h.eventually(probe, { ms, every: 200, describe: () => `${items.length} assets, waiting for ${n}` });
}

const companion = (e) => e.to === "api" && e.path.startsWith("/v1/companion/");

test("Uppy 5: a text file, a typeless .csv and a 12 MiB multipart file become assets with their bytes", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "up-files");
  const files = [
    { name: "hello.txt", bytes: Buffer.from("hello from uppy\n"), type: "text/plain", want: "text/plain" },
    { name: "table.csv", bytes: Buffer.from("a,b\n1,2\n"), type: "", want: "text/csv" },
    { name: "big.bin", bytes: h.makeFile(12 * h.MiB).bytes, type: "application/octet-stream", want: "application/octet-stream" },
  ];
  for (const f of files) await add(page, f.name, f.bytes, f.type);

  const { ok, failed } = await h.uppyUpload(page);

  assert.deepEqual({ ok, failed }, { ok: ["big.bin", "hello.txt", "table.csv"], failed: [] });
  const items = await assetsOnce(token, 3);
  for (const f of files) {
    const asset = items.find((a) => a.filename === f.name);
    assert.ok(asset, `no asset for ${f.name}`);
    await h.assertStored(token, asset, f.bytes, { contentType: f.want });
  }
  const calls = recorder.log.filter(companion);
  assert.equal(calls.filter((e) => e.path === "/v1/companion/s3/params").length, 2, "two single PUTs");
  assert.equal(calls.filter((e) => e.method === "POST" && e.path === "/v1/companion/s3/multipart").length, 1);
  assert.ok(calls.every((e) => e.headers.authorization === `Bearer ${token}`), "our JWT on every broker call");
  assert.equal(recorder.parts().length, 3);
  await h.assertNothingReserved(token);
});

test("Uppy 5: 5 × 12 MiB files (throughput in the diagnostics)", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "up-many");
  const files = Array.from({ length: 5 }, (_, i) => ({ name: `u${i}.bin`, bytes: h.makeFile(12 * h.MiB).bytes }));
  for (const f of files) await add(page, f.name, f.bytes, "application/octet-stream");

  const run = await h.uppyUpload(page);

  assert.equal(run.ok.length, 5);
  assert.equal(recorder.parts().filter((e) => e.status === 200).length, 15);
  const items = await assetsOnce(token, 5);
  for (const f of files) await h.assertStored(token, items.find((a) => a.filename === f.name), f.bytes);
  t.diagnostic(`Uppy 5: 5 × 12 MiB (multipart, 3 parts each) in ${(run.ms / 1000).toFixed(2)} s: ${(60 / (run.ms / 1000)).toFixed(1)} MiB/s`);
});

/** A 12 MiB file mid-upload, part 1 in the store and the others held (h.uppyMidMultipart). */
const midMultipart = (page, recorder, name) => h.uppyMidMultipart(page, env.server, recorder, name);

test("Uppy 5: pause mid-multipart, then resume: the parts are listed and only the missing ones sent", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "up-pause");
  const { bytes, id, uploadId, release } = await midMultipart(page, recorder, "pause.bin");

  await page.evaluate((fid) => uppy.pauseResume(fid), id);
  await release();
  const listed = recorder.next((e) => e.method === "GET" && e.path === `/v1/companion/s3/multipart/${uploadId}`);
  const from = recorder.log.length;
  await page.evaluate((fid) => uppy.pauseResume(fid), id);
  await listed;
  await page.waitForFunction(() => events.some((e) => e.type === "success"));

  const resumed = recorder.log.slice(from).filter((e) => e.to === "store" && e.status === 200).map((e) => e.part);
  assert.deepEqual(resumed.sort(), [2, 3]);
  assert.equal(recorder.parts(1).length, 1, "part 1 was sent once");
  const success = await page.evaluate(() => events.find((e) => e.type === "success").body);
  const [asset] = await assetsOnce(token, 1);
  assert.equal(success.asset_id ?? asset.id, asset.id);
  await h.assertStored(token, asset, bytes);
  await h.assertNothingReserved(token);
});

test("Uppy 5: removing a file mid-upload aborts it and releases its reservation", async (t) => {
  const { page, recorder, token } = await uppyPage(t, "up-remove");
  const { id, uploadId, release } = await midMultipart(page, recorder, "remove.bin");
  assert.equal((await h.usage(token)).reserved_bytes, 12 * h.MiB);

  const deleted = recorder.next((e) => e.method === "DELETE" && e.path === `/v1/companion/s3/multipart/${uploadId}`);
  await page.evaluate((fid) => uppy.removeFile(fid), id);
  assert.equal((await deleted).status, 200);
  await release();

  assert.equal((await h.api(token, "GET", `/v1/uploads/${uploadId}`)).status, "aborted");
  await h.assertNothingReserved(token);
  assert.deepEqual((await h.api(token, "GET", "/v1/assets")).items, []);
});

test("Uppy 5: a quota error is shown with the broker's message", async (t) => {
  const { page, owner, token } = await uppyPage(t, "up-quota");
  await h.api(h.mintToken("admin", { admin: true }), "PUT", `/v1/admin/owners/${encodeURIComponent(owner)}/quota`, { quota_bytes: 1000 });
  const bytes = Buffer.alloc(2000, "x");
  // What the broker says to this request, asked directly.
  const q = new URLSearchParams({ filename: "big.txt", type: "text/plain", "metadata[size]": String(bytes.length) });
  const direct = await fetch(`${h.API}/v1/companion/s3/params?${q}`, { headers: { authorization: `Bearer ${token}` } });
  const { message, error } = await direct.json();
  assert.equal(direct.status, 403);
  assert.equal(error.code, "quota_exceeded");
  await add(page, "big.txt", bytes, "text/plain");

  const result = (await h.uppyUpload(page)).failed.map((f) => f.name);

  assert.deepEqual(result, ["big.txt"]);
  const shown = await page.evaluate(() => events.filter((e) => e.type === "error").map((e) => e.message));
  assert.deepEqual(shown, [message]);
  // In the Dashboard, as the user sees it: "Failed to upload big.txt", the message in its tooltip.
  const informer = page.locator(".uppy-Informer p[role=alert]").first();
  await informer.waitFor();
  assert.match(await informer.textContent(), /^Failed to upload big\.txt/);
  const tip = informer.locator("[role=tooltip]");
  assert.equal(await tip.getAttribute("aria-label"), message);
  await tip.hover({ force: true }); // Uppy renders two informers, one over the other
  await page.waitForTimeout(400); // the tooltip fades in
  await page.screenshot({ path: h.artifact("uppy-quota.png") });
  await h.assertNothingReserved(token);
});
