// The browser tests' harness: Chromium through playwright-core, a static server on another
// origin than the broker (so every API call is cross-origin, preflights included, as in
// production), and a recorder of what a page sent to the broker and the store.
//
// scripts/test-browser.sh starts `r2-broker dev` and exports where it is under the names of
// clients/js/test/support/broker.js, whose broker-side helpers (tokens, plain API calls,
// "stored with these bytes" checks) these tests reuse as they are.
//
// A test file is `tests/browser/<name>.test.js`: `const env = h.setup()` gives it one Chromium
// and one static server; `h.testPage(t, env.browser, env.server, "<page>.html")` opens a page of
// pages/ on that server. The server also serves `node_modules/uppy/dist/` at `/uppy/` (the
// uppy 5 bundle in package.json), so a page can `import { Uppy, AwsS3, Dashboard } from
// "/uppy/uppy.min.mjs"` (pages/uppy.html, uppy.test.js). Uppy 6 ships no bundle (ES modules
// with bare imports): `bundle(source)` builds one with esbuild, in memory, and
// `server.file("/x.mjs", code, "text/javascript")` serves it (pages/uppy6.html, uppy6.test.js).

import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { build } from "esbuild";

export * from "../../../clients/js/test/support/broker.js";
import { API, MiB, STORE, makeFile, newOwner } from "../../../clients/js/test/support/broker.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
export const ARTIFACTS = process.env.R2B_BROWSER_ARTIFACTS ?? join(ROOT, "../../target/browser-artifacts");

/** Headless Chromium: Debian's (scripts/test-browser.sh installs it); playwright-core
 * downloads none and adds --no-sandbox as root. No background networking: this machine's
 * network reaches nothing outside, and Chromium's own calls would only fail. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.R2B_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

/** One Chromium and one static server for all the tests of a file (its before/after hooks):
 * `const env = h.setup();`, then `env.browser` and `env.server` in the tests. */
export function setup() {
  const env = {};
  before(async () => {
    [env.browser, env.server] = await Promise.all([launch(), staticServer()]);
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  return env;
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".map": "application/json" };
const MOUNTS = { "/pages/": join(ROOT, "pages"), "/uppy/": join(ROOT, "node_modules/uppy/dist") };

/** A static server on 127.0.0.1 (another port, so another origin than the broker): the test
 * pages under /pages/, the uppy bundle under /uppy/, and blobs a test adds with
 * `file(path, bytes, type?)` (pages fetch them to build the File objects they upload, or
 * import them: a bundle needs a JavaScript `type`). */
export async function staticServer() {
  const blobs = new Map();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    let { body, type = "application/octet-stream" } = blobs.get(path) ?? {};
    if (!body) {
      const mount = Object.keys(MOUNTS).find((m) => path.startsWith(m));
      const file = mount && normalize(join(MOUNTS[mount], path.slice(mount.length)));
      try {
        if (!file || !file.startsWith(MOUNTS[mount])) throw new Error("outside");
        body = readFileSync(file);
        type = TYPES[extname(file)] ?? type;
      } catch {
        res.writeHead(404).end("not found");
        return;
      }
    }
    res.writeHead(200, { "content-type": type, "content-length": body.length, "cache-control": "no-store" });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    /** A URL on this origin with `query` (e.g. `{ api: API }`). */
    url: (path, query = {}) => `${origin}${path}?${new URLSearchParams(query)}`,
    file: (path, bytes, type) => blobs.set(path, { body: typeof bytes === "string" ? Buffer.from(bytes) : bytes, type }),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** `source` (an ES module whose imports resolve from tests/browser, e.g. `export { default as
 * Uppy } from "@uppy/core"`) bundled by esbuild into one ES module for Chromium, in memory. */
export async function bundle(source) {
  const out = await build({
    stdin: { contents: source, resolveDir: ROOT, sourcefile: "bundle-entry.js", loader: "js" },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "chrome120",
    write: false,
    logLevel: "silent",
  });
  return out.outputFiles[0].text;
}

/** A fresh context (its own IndexedDB) and page; errors thrown in the page fail the test. */
export async function openPage(t, browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  t.after(() => {
    if (errors.length) throw new Error(`errors in the page: ${errors.map((e) => e.stack ?? e).join("\n")}`);
  });
  const recorder = record(page);
  await page.goto(url);
  return { context, page, recorder };
}

/** A test page of pages/ on the static server, `?api=` the broker, once it set `window.ready`.
 * client.html: `window.r2b` is the client module imported from ${API}/client/r2-broker.js;
 * uppy.html: `startUppy({ token })` makes `window.uppy` (the uppy 5 bundle, AwsS3 in
 * Companion mode against ${API}/v1/companion); uppy6.html: the same with Uppy 6 and the
 * client's createUppySigner (the bundle uppy6.test.js serves at /uppy6/uppy6.mjs). The
 * Uppy pages are opened with `uppyPage` (below). */
export async function testPage(t, browser, server, name) {
  const opened = await openPage(t, browser, server.url(`/pages/${name}`, { api: API }));
  await opened.page.waitForFunction(() => window.ready);
  return opened;
}

/** Every request the page sends to the broker or the store, with how it ended:
 * `{ to: "api" | "store", method, path, part, status, headers }` (`status` null while in
 * flight, 0 when it failed). */
export function record(page) {
  const log = [];
  const entries = new Map();
  let waiters = [];
  const settle = (r, status) => {
    const e = entries.get(r);
    if (!e) return;
    e.status = status;
    waiters = waiters.filter((w) => !(w.pred(e) && (w.resolve(e), true)));
  };
  page.on("request", (r) => {
    const url = new URL(r.url());
    const to = url.origin === API ? "api" : url.origin === STORE ? "store" : null;
    if (!to) return;
    const part = url.searchParams.get("partNumber");
    const e = { to, method: r.method(), path: url.pathname, part: part && Number(part), status: null, headers: r.headers() };
    entries.set(r, e);
    log.push(e);
  });
  page.on("requestfinished", async (r) => settle(r, (await r.response())?.status() ?? 0));
  page.on("requestfailed", (r) => settle(r, 0));
  return {
    log,
    /** Part PUTs (part number `n`, or all), e.g. `parts(1).filter((e) => e.status === 200)`. */
    parts: (n) => log.filter((e) => e.to === "store" && e.method === "PUT" && e.part != null && (n == null || e.part === n)),
    api: (method, re) => log.filter((e) => e.to === "api" && e.method === method && re.test(e.path)),
    /** Resolves with the first request from now on that ends and matches `pred(entry)`. */
    next: (pred) => new Promise((resolve) => waiters.push({ pred, resolve })),
  };
}

/** Routes the page's part PUTs through `handler(route, partNumber)`. */
export function routeParts(page, handler) {
  const match = (url) => url.origin === STORE && url.searchParams.has("partNumber");
  return page.route(match, (route) => handler(route, Number(new URL(route.request().url()).searchParams.get("partNumber"))));
}

/** Lets part 1's PUT through and holds every other part PUT (in flight, never answered) in
 * `held`, until `release()` drops the route and aborts them. */
export async function holdPartsAfterFirst(page) {
  const held = [];
  await routeParts(page, (route, n) => (n === 1 ? route.continue() : held.push(route)));
  const release = async () => {
    await page.unrouteAll({ behavior: "ignoreErrors" });
    for (const route of held) await route.abort().catch(() => {});
  };
  return { held, release };
}

/** Calls `probe()` (sync or async) every `every` ms until it gives something truthy, and
 * resolves with that; throws once `ms` have passed, saying `describe()`. */
export async function eventually(probe, { ms = 10_000, every = 20, describe = () => `not true: ${probe}` } = {}) {
  for (const t0 = Date.now(); ; ) {
    const got = await probe();
    if (got) return got;
    if (Date.now() - t0 > ms) throw new Error(`after ${ms} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

// ---- Uppy pages (pages/uppy.html: Uppy 5; pages/uppy6.html: Uppy 6) ----
// Each page has one function of its own, `startUppy(opts)`: Uppy set up as an app sets it
// up, as `window.uppy`. What the tests do with it is the same for both, so it is here.

/** The Uppy page `name` for a fresh owner: `startUppy({ token, ...opts })` made
 * `window.uppy`, and what it emits lands in `window.events`: `{ type: "success", name, body,
 * uploadURL }` and `{ type: "error", name, message, code }`. */
export async function uppyPage(t, browser, server, name, label, opts = {}) {
  const opened = await testPage(t, browser, server, name);
  const { owner, token } = newOwner(label);
  await opened.page.evaluate((o) => {
    startUppy(o);
    const events = (window.events = []);
    uppy.on("upload-success", (f, res) => events.push({ type: "success", name: f.name, body: res.body, uploadURL: res.uploadURL }));
    uppy.on("upload-error", (f, e) => events.push({ type: "error", name: f?.name, message: e.message, code: e.code }));
  }, { token, ...opts });
  return { ...opened, owner, token };
}

/** Serves `bytes` at /data/<name> and adds them to the page's Uppy as a File (`type` "":
 * Uppy guesses from the extension); resolves with the Uppy file id. */
export function addToUppy(page, server, name, bytes, type = "") {
  server.file(`/data/${name}`, bytes);
  return page.evaluate(async ([n, ty]) => {
    const blob = await (await fetch(`/data/${n}`)).blob();
    return uppy.addFile({ name: n, data: new File([blob], n, { type: ty, lastModified: 1_700_000_000_000 }), source: "test" });
  }, [name, type]);
}

/** `uppy.upload()` in the page: how long it took, the names of the files that made it
 * (sorted), and the `{ name, error }` of those that did not (in Uppy's order). */
export function uppyUpload(page) {
  return page.evaluate(async () => {
    const t0 = performance.now();
    const r = await uppy.upload();
    return {
      ms: performance.now() - t0,
      ok: r.successful.map((f) => f.name).sort(),
      failed: r.failed.map((f) => ({ name: f.name, error: `${f.error}` })),
    };
  });
}

/** Adds a 12 MiB file, holds its part PUTs but the first, starts the upload and resolves once
 * part 1 is in the store, with the file's bytes, its Uppy id, its upload id, and `release()`
 * (of the held part PUTs). */
export async function uppyMidMultipart(page, server, recorder, name) {
  const bytes = makeFile(12 * MiB).bytes;
  const id = await addToUppy(page, server, name, bytes, "application/octet-stream");
  const { release } = await holdPartsAfterFirst(page);
  const part1 = recorder.next((e) => e.part === 1 && e.status === 200);
  await page.evaluate(() => void uppy.upload());
  await part1;
  const uploadId = await page.evaluate((fid) => uppy.getFile(fid).s3Multipart?.uploadId, id);
  assert.ok(uploadId, "Uppy keeps the broker's upload id");
  return { bytes, id, uploadId, release };
}

export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
