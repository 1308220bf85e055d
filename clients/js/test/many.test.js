// uploadMany: at most 5 files at once, per-file and total progress, one failure isolated.

import { test } from "node:test";
import assert from "node:assert/strict";
import { uploadMany } from "../r2-broker.js";
import { startProxies } from "./support/proxy.js";
import * as b from "./support/broker.js";

test("uploadMany: 8 files go up at most 5 at once, with per-file and total progress", async (t) => {
  const p = await startProxies();
  t.after(() => p.close());
  const { token } = b.newOwner("many");
  const made = Array.from({ length: 8 }, (_, i) => b.makeFile(20_000 + i, `photo-${i}.jpg`, "image/jpeg"));
  const total = made.reduce((s, m) => s + m.bytes.length, 0);
  p.store.hook = p.store.barrier(5, 500); // each PUT waits until 5 are in flight
  const perFile = new Map();
  const totals = [];
  const completed = [];

  const results = await uploadMany(
    made.map((m) => m.file),
    {
      baseUrl: p.api,
      token,
      metadata: (file, i) => ({ index: String(i) }),
      onFileProgress: (e) => perFile.set(e.index, [...(perFile.get(e.index) ?? []), e]),
      onTotalProgress: (e) => totals.push(e),
      onFileComplete: (e) => completed.push(e.index),
    },
  );

  assert.equal(p.store.maxInflight, 5, "5 at once, never more");
  assert.equal(results.length, 8);
  for (const [i, r] of results.entries()) {
    assert.equal(r.status, "fulfilled", String(r.reason));
    assert.equal(r.value.filename, `photo-${i}.jpg`);
    assert.deepEqual(r.value.metadata, { index: String(i) });
    b.assertProgress(perFile.get(i), made[i].bytes.length);
  }
  assert.equal(completed.length, 8);
  b.assertProgress(totals, total);
  await Promise.all(results.map((r, i) => b.assertStored(token, r.value, made[i].bytes)));
  const u = await b.assertNothingReserved(token);
  assert.equal(u.object_count, 8);
});

test("uploadMany: a refused file is reported on its own and the others still become assets", async () => {
  const { token } = b.newOwner("mixed");
  const files = [b.makeFile(100, "a.txt", "text/plain"), b.makeFile(100, "b.png", "image/png"), b.makeFile(100, "c.txt", "text/plain")];
  const errors = [];

  const results = await uploadMany(files.map((f) => f.file), {
    baseUrl: b.API,
    token,
    profile: "text",
    onFileError: (e) => errors.push(e),
  });

  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.equal(results[1].reason.code, "unsupported_content_type");
  assert.deepEqual(errors.map((e) => e.index), [1]);
  const u = await b.assertNothingReserved(token);
  assert.equal(u.object_count, 2);
});
