// The real `r2-broker dev` that scripts/test-js.sh started, and helpers to check what the
// broker and the store hold (no mocks: every assertion ends at the broker or the store).

import { execFileSync } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import assert from "node:assert/strict";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the JS tests with scripts/test-js.sh`);
  return v;
}

export const API = env("R2B_JS_API");
export const STORE = env("R2B_JS_STORE");
const BIN = env("R2B_JS_BIN");
const DATA_DIR = env("R2B_JS_DATA_DIR");
export const MiB = 1024 * 1024;

/** A dev token for `owner` (HS256 with the dev secret), minted by `r2-broker dev token`. */
export function mintToken(owner, { admin = false } = {}) {
  const args = ["dev", "--data-dir", DATA_DIR, "token", "--owner", owner, "--days", "1"];
  if (admin) args.push("--admin");
  return execFileSync(BIN, args, { encoding: "utf8" }).trim();
}

/** A fresh owner per test, so usage and assets are the test's own. */
export function newOwner(label) {
  const owner = `js-${label}-${randomUUID().slice(0, 8)}`;
  return { owner, token: mintToken(owner) };
}

/** A plain broker call (not the client's): the test's own view of the broker. */
export async function api(token, method, path, body) {
  const res = await fetch(API + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export const usage = (token) => api(token, "GET", "/v1/usage");

/** The reservation of every pending intent is back to nothing. */
export async function assertNothingReserved(token) {
  const u = await usage(token);
  assert.equal(u.reserved_bytes, 0, `reserved_bytes: ${JSON.stringify(u)}`);
  assert.equal(u.reserved_objects, 0, `reserved_objects: ${JSON.stringify(u)}`);
  return u;
}

/** The asset as the broker records it, and its bytes downloaded from the store. */
export async function assertStored(token, asset, bytes, { contentType } = {}) {
  const recorded = await api(token, "GET", `/v1/assets/${asset.id}`);
  assert.equal(recorded.size, bytes.length);
  assert.equal(recorded.etag, asset.etag);
  if (contentType) assert.equal(recorded.content_type, contentType);
  const { url } = await api(token, "GET", `/v1/assets/${asset.id}/download-url`);
  const res = await fetch(url);
  assert.equal(res.status, 200, `download ${url}`);
  const got = Buffer.from(await res.arrayBuffer());
  assert.ok(got.equals(bytes), `downloaded ${got.length} bytes differ from the ${bytes.length} uploaded`);
  return recorded;
}

/** Random bytes (random letters for a text/* type: profiles that restrict types sniff the
 * content at complete, and random bytes are no text) and a File holding them. */
export function makeFile(size, name = "file.bin", type = "application/octet-stream") {
  const bytes = type.startsWith("text/") ? Buffer.from(randomBytes(size).map((x) => 97 + (x % 26))) : randomBytes(size);
  return { bytes, file: new File([bytes], name, { type, lastModified: 1_700_000_000_000 }) };
}

export const sha256b64 = (bytes) => createHash("sha256").update(bytes).digest("base64");

/** getToken that counts its calls (and can rotate among several tokens). */
export function countingToken(...tokens) {
  const f = async () => tokens[f.calls++ % tokens.length];
  f.calls = 0;
  return f;
}

/** Asserts progress events only grow and end at `total`. */
export function assertProgress(events, total) {
  assert.ok(events.length > 0, "no progress events");
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].loaded >= events[i - 1].loaded, `progress went back at ${i}: ${JSON.stringify(events)}`);
  }
  for (const e of events) assert.equal(e.total, total);
  assert.equal(events.at(-1).loaded, total, `last progress event: ${JSON.stringify(events.at(-1))}`);
}
