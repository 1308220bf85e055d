// The JS client (clients/js/r2-broker.js, as `r2-broker dev` serves it) in a real Chromium, from
// a page on another origin: put, multipart, progress, a network cut, a reload. Each test checks
// the broker's record and the store's bytes too.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as h from "./support/harness.js";

const env = h.setup();

const OCTETS = "application/octet-stream";

/** Serves `bytes` at /data/<name> and uploads it in the page (pages/client.html). */
function uploadIn(page, name, bytes, type, opts) {
  env.server.file(`/data/${name}`, bytes);
  return page.evaluate((args) => uploadServed(...args), [name, type, opts]);
}

/** The part numbers PUT among `entries`, sorted. */
const partNumbers = (entries) => entries.filter((e) => e.to === "store" && e.part != null).map((e) => e.part).sort((a, b) => a - b);

test("put: a small text file goes with its SHA-256 and becomes the asset", async (t) => {
  const { page, recorder } = await h.testPage(t, env.browser, env.server, "client.html");
  const { token } = h.newOwner("br-put");
  const bytes = Buffer.from("hello from chromium\n");

  const { asset, error } = await uploadIn(page, "hello.txt", bytes, "text/plain", { token });

  assert.equal(error, undefined, JSON.stringify(error));
  // 127.0.0.1 is a secure context: crypto.subtle hashed it, and the store checked the hash.
  assert.equal(asset.checksum_sha256, h.sha256b64(bytes));
  await h.assertStored(token, asset, bytes, { contentType: "text/plain" });
  const calls = recorder.log.filter((e) => e.to === "store" || e.path.startsWith("/v1/"));
  assert.deepEqual(calls.map((e) => `${e.method} ${e.to === "store" ? "store" : e.path.replace(asset.key.split("/")[2], "{id}")} ${e.status}`),
    ["POST /v1/uploads 201", "PUT store 200", "POST /v1/uploads/{id}/complete 201"]);
});

test("put: a file without a type is sent with the one its extension gives", async (t) => {
  const { page } = await h.testPage(t, env.browser, env.server, "client.html");
  const { token } = h.newOwner("br-ext");
  const bytes = Buffer.from("a,b\n1,2\n");

  const { asset, error } = await uploadIn(page, "table.csv", bytes, "", { token });

  assert.equal(error, undefined, JSON.stringify(error));
  assert.equal(asset.content_type, "text/csv");
  await h.assertStored(token, asset, bytes, { contentType: "text/csv" });
});

test("multipart: 12 MiB in three parts, with byte progress along the way", async (t) => {
  const { page, recorder } = await h.testPage(t, env.browser, env.server, "client.html");
  const { token } = h.newOwner("br-mp");
  const { bytes } = h.makeFile(12 * h.MiB);
  // Part 3 waits for part 1: progress is seen while some bytes are in the store and some not.
  const part1 = recorder.next((e) => e.part === 1 && e.status === 200);
  await h.routeParts(page, async (route, n) => (n === 3 && (await part1), route.continue()));

  const { asset, error, events } = await uploadIn(page, "big.bin", bytes, OCTETS, { token, profile: "small" });

  assert.equal(error, undefined, JSON.stringify(error));
  h.assertProgress(events, bytes.length);
  assert.ok(events.some((e) => e.loaded > 0 && e.loaded < bytes.length), `no progress before the end: ${JSON.stringify(events)}`);
  assert.deepEqual(partNumbers(recorder.log), [1, 2, 3]);
  await h.assertStored(token, asset, bytes, { contentType: OCTETS });
  await h.assertNothingReserved(token);
});

test("multipart: a short network cut (two part PUTs refused) is ridden out by retries", async (t) => {
  const { page, recorder } = await h.testPage(t, env.browser, env.server, "client.html");
  const { token } = h.newOwner("br-blip");
  const { bytes } = h.makeFile(12 * h.MiB);
  let cut = 0;
  await h.routeParts(page, (route, n) => (n === 2 && cut++ < 2 ? route.abort("internetdisconnected") : route.continue()));

  const { asset, error } = await uploadIn(page, "blip.bin", bytes, OCTETS, { token, profile: "small", retryDelay: 50 });

  assert.equal(error, undefined, JSON.stringify(error));
  assert.equal(cut, 3);
  assert.deepEqual(recorder.parts().map((e) => `${e.part}:${e.status}`).sort(), ["1:200", "2:0", "2:0", "2:200", "3:200"]);
  await h.assertStored(token, asset, bytes);
});

test("multipart: a network cut that outlasts the retries keeps the intent; the next upload() sends only the missing parts", async (t) => {
  const { page, recorder } = await h.testPage(t, env.browser, env.server, "client.html");
  const { token } = h.newOwner("br-cut");
  const { bytes } = h.makeFile(12 * h.MiB);
  const part1 = recorder.next((e) => e.part === 1 && e.status === 200);
  await h.routeParts(page, async (route, n) => {
    if (n === 1) return route.continue();
    await part1; // the network goes down once part 1 is in the store
    return route.abort("internetdisconnected");
  });
  const opts = { token, profile: "small", retries: 2, retryDelay: 50 };

  const cut = await uploadIn(page, "cut.bin", bytes, OCTETS, opts);

  assert.equal(cut.error?.code, "network_error", JSON.stringify(cut.error));
  assert.equal(cut.error.retryable, true);
  const id = cut.error.uploadId;
  assert.equal((await h.api(token, "GET", `/v1/uploads/${id}`)).status, "pending");
  assert.equal((await h.api(token, "GET", `/v1/uploads/${id}/parts`)).parts.length, 1);

  await page.unrouteAll();
  const from = recorder.log.length;
  const resumed = await uploadIn(page, "cut.bin", bytes, OCTETS, opts);

  assert.equal(resumed.error, undefined, JSON.stringify(resumed.error));
  const again = recorder.log.slice(from);
  assert.deepEqual(partNumbers(again), [2, 3]);
  assert.equal(recorder.parts(1).length, 1, "part 1 was sent once");
  assert.equal(again.filter((e) => e.method === "POST" && e.path === "/v1/uploads").length, 0, "no new intent");
  assert.ok(again.some((e) => e.method === "GET" && e.path === `/v1/uploads/${id}/parts`), "the parts were listed");
  assert.ok(resumed.asset.key.includes(id), resumed.asset.key);
  await h.assertStored(token, resumed.asset, bytes);
  await h.assertNothingReserved(token);
});

test("multipart: a page reload mid-upload resumes from IndexedDB with only the missing parts", async (t) => {
  const { page, recorder } = await h.testPage(t, env.browser, env.server, "client.html");
  const { token } = h.newOwner("br-reload");
  const { bytes } = h.makeFile(12 * h.MiB);
  env.server.file("/data/reload.bin", bytes);
  // Parts 2 and 3: in flight, never answered, when the page reloads.
  const { held, release } = await h.holdPartsAfterFirst(page);
  const part1 = recorder.next((e) => e.part === 1 && e.status === 200);
  const opts = { token, profile: "small" };

  await page.evaluate((o) => void (window.running = uploadServed("reload.bin", "application/octet-stream", o)), opts);
  await part1;
  await h.eventually(() => held.length === 2);
  const records = await page.evaluate(() => resumeRecords());
  assert.equal(records.length, 1, "one resume record in IndexedDB");
  const id = records[0].upload_id;

  await page.reload();
  await release();
  await page.waitForFunction(() => window.ready);
  const from = recorder.log.length;
  const { asset, error } = await page.evaluate((o) => uploadServed("reload.bin", "application/octet-stream", o), opts);

  assert.equal(error, undefined, JSON.stringify(error));
  const again = recorder.log.slice(from);
  assert.deepEqual(partNumbers(again), [2, 3]);
  assert.equal(recorder.parts(1).length, 1, "part 1 was sent once");
  assert.equal(again.filter((e) => e.method === "POST" && e.path === "/v1/uploads").length, 0, "no new intent");
  assert.ok(asset.key.includes(id), asset.key);
  assert.deepEqual(await page.evaluate(() => resumeRecords()), [], "the record is gone once completed");
  await h.assertStored(token, asset, bytes);
  await h.assertNothingReserved(token);
});

test("uploadMany: 5 × 12 MiB files, five at once (throughput in the diagnostics)", async (t) => {
  const { page, recorder } = await h.testPage(t, env.browser, env.server, "client.html");
  const { token } = h.newOwner("br-many");
  const files = Array.from({ length: 5 }, (_, i) => ({ name: `m${i}.bin`, bytes: h.makeFile(12 * h.MiB).bytes }));
  for (const f of files) env.server.file(`/data/${f.name}`, f.bytes);

  const run = await page.evaluate(async ({ api, token, names }) => {
    const list = await Promise.all(names.map((n) => fileFrom(`/data/${n}`, n, "application/octet-stream")));
    const totals = [];
    const t0 = performance.now();
    const results = await r2b.uploadMany(list, { baseUrl: api, token, profile: "small", onTotalProgress: (p) => totals.push(p) });
    return { ms: performance.now() - t0, totals, results: results.map((r) => r.value ?? { error: r.reason.message }) };
  }, { api: h.API, token, names: files.map((f) => f.name) });

  const total = 60 * h.MiB;
  h.assertProgress(run.totals, total);
  const creates = recorder.api("POST", /^\/v1\/uploads$/).map((e) => recorder.log.indexOf(e));
  const firstComplete = recorder.log.findIndex((e) => e.path.endsWith("/complete"));
  assert.equal(creates.length, 5);
  assert.ok(creates.every((i) => i < firstComplete), "all five files were under way at once");
  assert.equal(recorder.parts().length, 15);
  for (const [i, f] of files.entries()) await h.assertStored(token, run.results[i], f.bytes);
  t.diagnostic(`5 × 12 MiB (multipart, 3 parts each) in ${(run.ms / 1000).toFixed(2)} s: ${(60 / (run.ms / 1000)).toFixed(1)} MiB/s`);
});
