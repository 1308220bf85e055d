// @r2-broker/client: uploads straight to R2 / S3 through r2-broker's presigned URLs.
//
// One ES module with no imports and no dependencies, so that `r2-broker dev` can serve this
// very file at /client/r2-broker.js. It uses only fetch, XMLHttpRequest, Blob and crypto.subtle, so it
// runs in browsers, Web Workers, React Native and Node 18+. Types: r2-broker.d.ts.
//
//   upload(file, opts)       one file: intent -> PUT or parts -> complete -> the asset
//   uploadMany(files, opts)  up to `concurrency` (5) files at once, results like allSettled
//   request(opts, m, path)   one broker call with auth, retries and UploadError
//   createUppySigner(opts)   signRequest (and friends) for @uppy/aws-s3 6.x, through the broker
//   memoryStore(), indexedDBStore()  where multipart uploads are remembered for resuming
//
// Lifecycle rules (clients/js/README.md, "Cancel, pause, resume"): an intent is aborted (DELETE, reservation released)
// when the caller aborts `signal` or the upload fails for good; it is kept, with its resume
// record, when `pauseSignal` fires or the network stays down after every retry, so that a
// later upload() of the same file (same fingerprint) sends only the missing parts.

const MiB = 1024 * 1024;

const DEFAULTS = {
  concurrency: 5, // files at once (uploadMany)
  partConcurrency: 6, // parts at once per file
  retries: 5, // per request, after the first attempt
  retryDelay: 500, // ms, first backoff step (doubles each retry, with jitter)
  maxRetryDelay: 30000, // ms; a longer Retry-After fails the request instead of waiting
  checksumMaxSize: 8 * MiB, // SHA-256 for put uploads up to this size
  requestTimeout: 30000, // ms per broker call (complete: 4x)
  stallTimeout: 60000, // ms without upload progress before an XHR PUT is retried
  presignBatch: 100, // part URLs asked for per call (the broker takes 1 to 1000)
  progressInterval: 100, // ms between throttled progress callbacks
};

// Headers the runtime sets itself (browsers refuse them on fetch and XHR).
const UNSAFE_HEADERS = new Set(["content-length", "host", "connection"]);

const TYPES = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", gif: "image/gif", webp: "image/webp",
  heic: "image/heic", heif: "image/heif", avif: "image/avif", tif: "image/tiff", tiff: "image/tiff",
  mp4: "video/mp4", mov: "video/quicktime", webm: "video/webm", mp3: "audio/mpeg", m4a: "audio/mp4",
  wav: "audio/wav", pdf: "application/pdf", txt: "text/plain", csv: "text/csv", json: "application/json",
  zip: "application/zip",
};

// ---- errors ----

/** Every failure of this module. `code` is the broker's error code, or one of the client's
 * own: network_error, store_error, url_expired, etag_not_exposed, aborted, paused,
 * bad_response, invalid_file. */
export class UploadError extends Error {
  constructor(code, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "UploadError";
    this.code = code;
    this.status = extra.status ?? 0;
    this.requestId = extra.requestId ?? null;
    this.retryable = extra.retryable ?? false;
    this.retryAfter = extra.retryAfter ?? null; // seconds, from Retry-After
    this.uploadId = extra.uploadId ?? null;
    this.storeCode = extra.storeCode ?? null; // S3 <Code> for store_error / url_expired
  }
}

function brokerError(status, text, headers, what) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (a proxy's page, say)
  }
  const e = body && typeof body.error === "object" ? body.error : null;
  const code = e?.code ?? (status >= 500 ? "unavailable" : "bad_response");
  const message = e?.message ?? `${what}: HTTP ${status}`;
  const inProgress = status === 409 && /still in progress/.test(message); // idempotency key in flight
  return new UploadError(code, message, {
    status,
    requestId: e?.request_id ?? headers.get("x-request-id"),
    retryable: status >= 500 || status === 429 || status === 408 || inProgress,
    retryAfter: parseRetryAfter(headers.get("retry-after")),
  });
}

function storeError(res, url, what) {
  const tag = (t) => (res.text.match(new RegExp(`<${t}>([^<]*)</${t}>`)) ?? [])[1] ?? null;
  const [code, message] = [tag("Code"), tag("Message")];
  const expired =
    /request has expired/i.test(message ?? "") || (res.status === 403 && !code && presignedUrlExpired(url));
  const detail = code ? `${code}: ${message ?? ""}` : `HTTP ${res.status}`;
  if (expired) return new UploadError("url_expired", `${what}: the presigned URL has expired (${detail})`, {
    status: res.status, storeCode: code,
  });
  return new UploadError("store_error", `${what}: the store refused it (${detail})`, {
    status: res.status,
    storeCode: code,
    retryable: res.status >= 500 || res.status === 429 || res.status === 408 || code === "RequestTimeout",
    retryAfter: parseRetryAfter(res.retryAfter),
  });
}

function presignedUrlExpired(url) {
  try {
    const q = new URL(url).searchParams;
    const [d, ttl] = [q.get("X-Amz-Date"), Number(q.get("X-Amz-Expires"))];
    const m = d && d.match(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/);
    return !!m && Date.UTC(m[1], m[2] - 1, m[3], m[4], m[5], m[6]) + ttl * 1000 <= Date.now();
  } catch {
    return false;
  }
}

function parseRetryAfter(value) {
  if (value == null || value === "") return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

// ---- context: options, signals, retries ----

const ACTIVE = new Set(); // resume keys being uploaded in this realm (no two runs on one intent)
let sharedMemoryStore = null;

/** Options with defaults, plus a per-attempt lane: one AbortController fed by the caller's
 * `signal` and `pauseSignal`, also aborted by the first fatal error so sibling parts stop. */
class Context {
  constructor(opts) {
    if (!opts || !opts.baseUrl) throw new TypeError("r2-broker: `baseUrl` is required");
    if (typeof opts.getToken !== "function" && typeof opts.token !== "string") {
      throw new TypeError("r2-broker: `getToken` (or a fixed `token`) is required");
    }
    Object.assign(this, DEFAULTS);
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) this[k] = v;
    this.opts = opts;
    this.baseUrl = String(opts.baseUrl).replace(/\/+$/, "");
    this.getToken = opts.getToken ?? (() => opts.token);
    this.fetch = opts.fetch ?? ((...a) => globalThis.fetch(...a));
    this.useXhr = opts.transport === "xhr" || (opts.transport !== "fetch" && typeof XMLHttpRequest === "function");
    if (opts.resumeStore === undefined) {
      this.resumeStore = typeof indexedDB === "object" && indexedDB ? indexedDBStore() : (sharedMemoryStore ??= memoryStore());
    }
    this.end = null;
    this.begin();
  }

  begin() {
    this.end?.();
    const ac = new AbortController();
    const relay = () => ac.abort();
    const signals = [this.opts.signal, this.opts.pauseSignal].filter(Boolean);
    for (const s of signals) s.aborted ? ac.abort() : s.addEventListener("abort", relay, { once: true });
    this.ac = ac;
    this.signal = ac.signal;
    this.failure = null;
    this.end = () => signals.forEach((s) => s.removeEventListener("abort", relay));
  }

  /** A lane that ignores the caller's signals: cleanup after an abort. */
  detached() {
    const c = Object.assign(Object.create(Context.prototype), this, { end: null });
    c.opts = { ...this.opts, signal: undefined, pauseSignal: undefined };
    c.begin();
    return c;
  }

  fail(err) {
    this.failure ??= err;
    this.ac.abort();
  }

  /** The caller's abort or pause, as an UploadError. */
  external() {
    const { signal, pauseSignal } = this.opts;
    if (signal?.aborted) return new UploadError("aborted", "the upload was cancelled", { cause: signal.reason });
    if (pauseSignal?.aborted) return new UploadError("paused", "the upload was paused; upload the same file again to resume");
    return null;
  }

  stopError() {
    return this.external() ?? this.failure;
  }

  check() {
    const e = this.stopError();
    if (e) throw e;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", stop);
    };
    const stop = () => (done(), reject(signal.reason));
    const t = setTimeout(() => (done(), resolve()), ms);
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/** Runs `fn` until it succeeds, retrying UploadErrors marked `retryable` with exponential
 * backoff and jitter (never sooner than Retry-After). `err.retryNow` retries at once
 * without counting (a refreshed URL); `fn` bounds those itself. An error that used up an
 * inner loop's retries (`exhausted`) is not retried again by an outer one. */
async function withRetries(ctx, fn, retries = ctx.retries) {
  for (let attempt = 0; ; ) {
    ctx.check();
    try {
      return await fn(attempt);
    } catch (e) {
      const stop = ctx.stopError();
      if (stop) throw stop;
      if (!(e instanceof UploadError)) throw e;
      if (e.retryNow) {
        e.retryNow = false;
        continue;
      }
      if (!e.retryable || e.exhausted) throw e;
      if (attempt >= retries) {
        e.exhausted = true;
        throw e;
      }
      const step = Math.min(ctx.maxRetryDelay, ctx.retryDelay * 2 ** attempt);
      let delay = step / 2 + (Math.random() * step) / 2;
      if (e.retryAfter != null) {
        if (e.retryAfter * 1000 > ctx.maxRetryDelay) {
          e.exhausted = true;
          throw e;
        }
        delay = Math.max(delay, e.retryAfter * 1000) + Math.random() * 100;
      }
      attempt++;
      ctx.opts.onRetry?.({ attempt, delay, error: e });
      try {
        await sleep(delay, ctx.signal);
      } catch {
        throw ctx.stopError() ?? e;
      }
    }
  }
}

// ---- broker calls ----

/** One broker call: a fresh token per attempt, JSON in and out, retries, UploadError.
 * `detached` calls ignore the lane's signal (cleanup after an abort). */
async function call(ctx, method, path, { body, key, timeout, detached = false, retries } = {}) {
  const c = detached ? ctx.detached() : ctx;
  let nextToken = null;
  let authRetried = false;
  return withRetries(c, async () => {
    const token = nextToken ?? (await c.getToken());
    nextToken = null;
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (key) headers["idempotency-key"] = key;
    const t = new AbortController();
    const relay = () => t.abort();
    c.signal.addEventListener("abort", relay, { once: true });
    const timer = setTimeout(relay, timeout ?? c.requestTimeout);
    let res, text;
    try {
      res = await c.fetch(c.baseUrl + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: t.signal,
      });
      text = await res.text();
    } catch (e) {
      c.check();
      throw new UploadError("network_error", `${method} ${path}: ${e?.message ?? e}`, { retryable: true, cause: e });
    } finally {
      clearTimeout(timer);
      c.signal.removeEventListener("abort", relay);
    }
    if (res.ok) {
      if (!text) return null;
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new UploadError("bad_response", `${method} ${path}: the answer is not JSON`, { status: res.status, cause: e });
      }
    }
    const err = brokerError(res.status, text, res.headers, `${method} ${path}`);
    if (res.status === 401 && !authRetried) {
      // Tokens rotate: one more try, but only with a token that differs from the refused one.
      authRetried = true;
      nextToken = await c.getToken();
      if (nextToken !== token) err.retryNow = true;
    }
    throw err;
  }, retries);
}

/** One broker request with `opts` as for upload() (baseUrl, getToken, retries, signal…):
 * `request(opts, "GET", "/v1/assets")`. Resolves with the parsed JSON (null for 204). */
export function request(opts, method, path, { body, idempotencyKey } = {}) {
  return call(new Context(opts), method, path, { body, key: idempotencyKey });
}

// ---- the store: PUT a Blob with XHR (upload progress) or fetch (none) ----

function sendBlob(ctx, url, headers, blob, onBytes) {
  const safe = Object.entries(headers ?? {}).filter(([k]) => !UNSAFE_HEADERS.has(k.toLowerCase()));
  return ctx.useXhr ? sendXhr(ctx, url, safe, blob, onBytes) : sendFetch(ctx, url, safe, blob);
}

async function sendFetch(ctx, url, headers, blob) {
  let res;
  try {
    res = await ctx.fetch(url, { method: "PUT", headers: Object.fromEntries(headers), body: blob, signal: ctx.signal });
    return { status: res.status, etag: res.headers.get("etag"), retryAfter: res.headers.get("retry-after"), text: await res.text() };
  } catch (e) {
    ctx.check();
    throw storeNetworkError(e);
  }
}

function sendXhr(ctx, url, headers, blob, onBytes) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let stall = null;
    const finish = (fn, v) => {
      clearTimeout(stall);
      ctx.signal.removeEventListener("abort", onAbort);
      fn(v);
    };
    const onAbort = () => (xhr.abort(), finish(reject, ctx.stopError() ?? new UploadError("aborted", "aborted")));
    const arm = () => {
      clearTimeout(stall);
      stall = setTimeout(() => {
        xhr.abort();
        finish(reject, storeNetworkError(new Error(`no progress for ${ctx.stallTimeout / 1000} s`)));
      }, ctx.stallTimeout);
    };
    xhr.open("PUT", url, true);
    for (const [k, v] of headers) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => (arm(), onBytes(e.loaded));
    xhr.onload = () => finish(resolve, {
      status: xhr.status,
      etag: xhr.getResponseHeader("etag"),
      retryAfter: xhr.getResponseHeader("retry-after"),
      text: typeof xhr.responseText === "string" ? xhr.responseText : "",
    });
    // Status 0: the connection failed, or the store's CORS refused the request.
    xhr.onerror = () => finish(reject, storeNetworkError(new Error("network error (or the store's CORS refused the request)")));
    xhr.ontimeout = xhr.onerror;
    if (ctx.signal.aborted) return onAbort();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    xhr.send(blob);
    arm();
  });
}

const storeNetworkError = (e) =>
  new UploadError("network_error", `upload to the store failed: ${e?.message ?? e}`, { retryable: true, cause: e });

// ---- progress ----

/** Byte progress, monotonic (a retried part does not move it back), throttled to one call
 * per `interval` ms with a trailing call, and forced at part ends. */
function progressReporter(total, cb, interval) {
  let base = 0, last = -1, lastAt = 0, timer = null;
  const inflight = new Map();
  const emit = () => {
    clearTimeout(timer);
    timer = null;
    let now = base;
    for (const v of inflight.values()) now += v;
    now = Math.min(total, Math.max(last, now));
    if (now === last) return;
    last = now;
    lastAt = Date.now();
    cb?.({ loaded: now, total });
  };
  const schedule = () => {
    if (timer) return;
    const wait = interval - (Date.now() - lastAt);
    wait <= 0 ? emit() : (timer = setTimeout(emit, wait));
  };
  return {
    start: () => ((last = -1), emit()),
    part: (n, loaded) => (inflight.set(n, loaded), schedule()),
    flush: () => emit(),
    done: (n, size) => (inflight.delete(n), (base += size), emit()),
    reset: (keepLast = false) => ((base = 0), (last = keepLast ? last : -1), inflight.clear()),
    close: () => clearTimeout(timer),
  };
}

// ---- resume stores ----

/** Resume records kept in memory (the default outside browsers; lost on restart). */
export function memoryStore() {
  const m = new Map();
  return {
    get: async (k) => m.get(k),
    set: async (k, v) => void m.set(k, v),
    remove: async (k) => void m.delete(k),
  };
}

/** Resume records in IndexedDB (the default in browsers and workers): they survive a reload. */
export function indexedDBStore(dbName = "r2-broker") {
  let db = null;
  const open = () => (db ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("uploads");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  }));
  const run = async (mode, fn) => {
    const tx = (await open()).transaction("uploads", mode);
    const req = fn(tx.objectStore("uploads"));
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  };
  return {
    get: (k) => run("readonly", (s) => s.get(k)),
    set: (k, v) => run("readwrite", (s) => s.put(v, k)).then(() => undefined),
    remove: (k) => run("readwrite", (s) => s.delete(k)).then(() => undefined),
  };
}

// A broken store (private browsing, quota) must never fail an upload.
async function storeOp(ctx, op, ...args) {
  try {
    return await ctx.resumeStore?.[op](...args);
  } catch {
    return undefined;
  }
}

// ---- helpers ----

function uuid() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  if (typeof c?.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function base64(bytes) {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += abc[(n >> 18) & 63] + abc[(n >> 12) & 63];
    out += i + 1 < bytes.length ? abc[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? abc[n & 63] : "=";
  }
  return out;
}

/** Base64 SHA-256 of a Blob, or undefined where crypto.subtle (secure contexts only) is absent. */
async function sha256(blob) {
  const subtle = globalThis.crypto?.subtle;
  if (typeof subtle?.digest !== "function" || typeof blob.arrayBuffer !== "function") return undefined;
  try {
    return base64(new Uint8Array(await subtle.digest("SHA-256", await blob.arrayBuffer())));
  } catch {
    return undefined;
  }
}

function describe(file, opts) {
  const name = opts.filename ?? file.name ?? "upload";
  const ext = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  const type = opts.contentType ?? (file.type || TYPES[ext] || "application/octet-stream");
  const profile = opts.profile ?? "default";
  // The fingerprint: what identifies "the same file" after a reload.
  const resumeKey = ["r2b", opts.baseUrl.replace(/\/+$/, ""), profile, opts.collection ?? "", name, file.size, file.lastModified ?? "", type].join("|");
  return { name, type, profile, resumeKey };
}

const partLength = (size, partSize, n) => Math.min(partSize, size - (n - 1) * partSize);

// ---- upload ----

/**
 * Uploads one Blob/File and resolves with the verified asset (see r2-broker.d.ts).
 * @param {Blob} file
 * @param {object} opts
 */
export async function upload(file, opts = {}) {
  if (!file || typeof file.size !== "number" || typeof file.slice !== "function") {
    throw new UploadError("invalid_file", "upload() takes a Blob or File");
  }
  const ctx = new Context(opts);
  const info = describe(file, ctx);
  const progress = progressReporter(file.size, opts.onProgress, ctx.progressInterval);
  const resumable = !!ctx.resumeStore && !ACTIVE.has(info.resumeKey);
  const st = { id: null, pending: null, recorded: false }; // the intent this run holds
  if (resumable) ACTIVE.add(info.resumeKey);
  try {
    ctx.check();
    progress.start();
    let record = resumable ? await storeOp(ctx, "get", info.resumeKey) : null;
    for (let restarts = 0; ; restarts++) {
      ctx.begin();
      try {
        const asset = await attempt(ctx, st, file, info, progress, record, resumable);
        if (st.recorded) await storeOp(ctx, "remove", info.resumeKey);
        progress.done("end", 0);
        return asset;
      } catch (e) {
        record = null;
        const expired = e instanceof UploadError && (e.code === "upload_expired" || e.code === "url_expired");
        if (!expired || restarts >= 1 || ctx.external()) throw e;
        await discard(ctx, st, info); // the intent outlived its URLs: start again with a new one
        progress.reset();
        progress.start();
      }
    }
  } catch (e) {
    const err = e instanceof UploadError ? e : new UploadError("bad_response", String(e?.message ?? e), { cause: e });
    err.uploadId ??= st.id;
    // Kept for a later resume: a pause, or a network that stayed down (when a record exists).
    const keep = err.code === "paused" || (err.retryable && st.recorded);
    if (!keep) await discard(ctx, st, info);
    throw err;
  } finally {
    if (resumable) ACTIVE.delete(info.resumeKey);
    progress.close();
    ctx.end();
  }
}

async function attempt(ctx, st, file, info, progress, record, resumable) {
  if (record?.upload_id) {
    const asset = await resume(ctx, st, file, info, progress, record);
    if (asset) return asset;
  }
  const intent = await createIntent(ctx, st, file, info);
  if (resumable) {
    const { upload_id, method, part_size, part_count, expires_at } = intent;
    await storeOp(ctx, "set", info.resumeKey, { upload_id, method, part_size, part_count, expires_at, created_at: new Date().toISOString() });
    st.recorded = true;
  }
  if (intent.method === "multipart") return multipart(ctx, intent, file, progress, null);
  if (intent.method === "put") return put(ctx, intent, file, progress);
  throw new UploadError("bad_response", `unexpected upload method ${intent.method}`, { uploadId: intent.upload_id });
}

async function createIntent(ctx, st, file, info) {
  const body = { filename: info.name, content_type: info.type, size: file.size };
  if (ctx.profile) body.profile = ctx.profile;
  if (ctx.collection) body.collection = ctx.collection;
  if (ctx.metadata) body.metadata = ctx.metadata;
  if (ctx.method) body.method = ctx.method;
  if ((ctx.method ?? "put") === "put" && file.size <= ctx.checksumMaxSize) {
    const sum = await sha256(file);
    if (sum) body.checksum_sha256 = sum;
  }
  // With a checksum and no method the broker picks put (up to 5 GiB) whatever the
  // profile's multipart threshold, so the checksum is always checked by the store.
  st.pending = { key: uuid(), body };
  try {
    const intent = await call(ctx, "POST", "/v1/uploads", { body, key: st.pending.key });
    st.id = intent.upload_id;
    st.pending = null;
    return intent;
  } catch (e) {
    // An answer means nothing was reserved (a 5xx writes nothing); no answer: outcome unknown.
    if (e instanceof UploadError && e.status > 0) st.pending = null;
    throw e;
  }
}

/** Picks up a remembered intent. Resolves with the asset, or null to start afresh. */
async function resume(ctx, st, file, info, progress, rec) {
  const id = rec.upload_id;
  if (!(Date.parse(rec.expires_at) > Date.now())) {
    await storeOp(ctx, "remove", info.resumeKey);
    return null;
  }
  Object.assign(st, { id, recorded: true });
  let listing;
  try {
    // A put may have finished before the reload (complete tells); a multipart lists its parts.
    if (rec.method === "put") return await complete(ctx, id, undefined);
    listing = await call(ctx, "GET", `/v1/uploads/${id}/parts`);
  } catch (e) {
    if (ctx.stopError() || e.retryable) throw e;
    if (e.code === "invalid_state") {
      // Completed by a run whose answer was lost? Then that asset is the answer.
      const s = await call(ctx, "GET", `/v1/uploads/${id}`).catch(() => null);
      const asset = s?.status === "completed" && s.asset_id
        ? await call(ctx, "GET", `/v1/assets/${s.asset_id}`).catch(() => null)
        : null;
      if (asset) return asset;
    }
    await discard(ctx, st, info); // expired, unknown (another owner's token) or not resumable
    return null;
  }
  const { part_size: ps, part_count: n } = listing;
  if (!(ps > 0 && n >= 1 && (n - 1) * ps < file.size && file.size <= n * ps)) {
    await discard(ctx, st, info); // not this file's plan
    return null;
  }
  return multipart(ctx, { upload_id: id, part_size: ps, part_count: n }, file, progress, listing);
}

async function put(ctx, intent, file, progress) {
  const what = `PUT ${intent.key}`;
  await withRetries(ctx, async () => {
    const res = await sendBlob(ctx, intent.url, intent.headers, file, (n) => progress.part(0, Math.min(n, file.size)));
    // 412: `If-None-Match: *` found the object, i.e. an earlier attempt's answer was lost.
    if ((res.status >= 200 && res.status < 300) || res.status === 412) return;
    progress.part(0, 0);
    throw storeError(res, intent.url, what);
  });
  progress.done(0, file.size);
  return complete(ctx, intent.upload_id, undefined);
}

function complete(ctx, id, parts) {
  const body = parts ? { parts } : undefined;
  return call(ctx, "POST", `/v1/uploads/${id}/complete`, { body, key: uuid(), timeout: 4 * ctx.requestTimeout });
}

async function multipart(ctx, intent, file, progress, listing, relisted = false) {
  const { upload_id: id, part_size: ps, part_count: count } = intent;
  const etags = new Map();
  for (const p of listing?.parts ?? []) {
    if (p.part_number >= 1 && p.part_number <= count && p.size === partLength(file.size, ps, p.part_number)) {
      etags.set(p.part_number, p.etag);
      progress.done(p.part_number, p.size);
    }
  }
  const todo = [];
  for (let n = 1; n <= count; n++) if (!etags.has(n)) todo.push(n);
  const urls = new Map();
  const asked = new Set();
  let presigning = null;
  const urlFor = async (n) => {
    while (!urls.has(n)) {
      if (!presigning) {
        const batch = [n, ...todo.filter((p) => p !== n && !asked.has(p) && !etags.has(p))].slice(0, ctx.presignBatch);
        batch.forEach((p) => asked.add(p));
        presigning = call(ctx, "POST", `/v1/uploads/${id}/parts`, { body: { part_numbers: batch } })
          .then((r) => r.parts.forEach((p) => urls.set(p.part_number, p)))
          .finally(() => (presigning = null));
      }
      const wasAsked = asked.has(n);
      await presigning;
      if (wasAsked && !urls.has(n)) throw new UploadError("bad_response", `no URL for part ${n}`, { uploadId: id });
    }
    return urls.get(n);
  };
  const sendPart = async (n) => {
    let refreshes = 0;
    await withRetries(ctx, async () => {
      const u = await urlFor(n);
      const start = (n - 1) * ps;
      const res = await sendBlob(ctx, u.url, u.headers, file.slice(start, start + u.size), (b) => progress.part(n, Math.min(b, u.size)));
      if (res.status >= 200 && res.status < 300) {
        if (!res.etag && !ctx.allowMissingETag) {
          throw new UploadError("etag_not_exposed",
            `the store accepted part ${n} but hid its ETag header, which complete needs: the bucket's CORS rule must ` +
            `expose it ("ExposeHeaders": ["ETag"], see the r2-broker README), or pass allowMissingETag: true`,
            { uploadId: id, status: res.status });
        }
        etags.set(n, res.etag || null);
        progress.done(n, u.size);
        return;
      }
      progress.part(n, 0);
      const err = storeError(res, u.url, `part ${n}`);
      if (err.code === "url_expired" && refreshes++ < 3) {
        urls.delete(n);
        asked.delete(n);
        err.retryNow = true; // ask the broker for a fresh URL, at once
      }
      throw err;
    });
  };
  let next = 0;
  const worker = async () => {
    while (next < todo.length && !ctx.signal.aborted) {
      try {
        await sendPart(todo[next++]);
      } catch (e) {
        ctx.fail(e); // stop the other workers' parts too
        throw e;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(ctx.partConcurrency, todo.length)) }, worker);
  const results = await Promise.allSettled(workers);
  const stop = ctx.external();
  if (stop) throw stop;
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw ctx.failure ?? failed.reason;
  const parts = [...etags].sort((a, b) => a[0] - b[0]).map(([part_number, etag]) => ({ part_number, etag }));
  try {
    return await complete(ctx, id, parts.every((p) => p.etag) ? parts : undefined);
  } catch (e) {
    if (e.code !== "object_missing" || relisted) throw e;
    // The store lacks a part we thought sent: list again and send what is missing, once.
    progress.reset(true);
    const again = await call(ctx, "GET", `/v1/uploads/${id}/parts`);
    return multipart(ctx, intent, file, progress, again, true);
  }
}

/** Aborts the intent this run holds (releasing its reservation) and forgets it. A create
 * cut short by the abort is sent again with its Idempotency-Key to learn the id. */
async function discard(ctx, st, info) {
  if (!st.id && st.pending) {
    const { key, body } = st.pending;
    const intent = await call(ctx, "POST", "/v1/uploads", { body, key, detached: true, retries: 1 }).catch(() => null);
    st.id = intent?.upload_id ?? null;
  }
  if (st.id) {
    await call(ctx, "DELETE", `/v1/uploads/${st.id}`, { key: uuid(), detached: true, retries: 2 }).catch(() => null);
  }
  if (st.recorded) await storeOp(ctx, "remove", info.resumeKey);
  Object.assign(st, { id: null, pending: null, recorded: false });
}

// ---- many files ----

/**
 * Uploads files `concurrency` (5) at a time. Resolves, in input order, with
 * `{status: "fulfilled", value: asset}` or `{status: "rejected", reason: UploadError}`.
 */
export async function uploadMany(files, opts = {}) {
  const list = Array.from(files);
  const loaded = list.map(() => 0);
  const total = list.reduce((s, f) => s + (f?.size ?? 0), 0);
  const totals = progressReporter(total, opts.onTotalProgress, opts.progressInterval ?? DEFAULTS.progressInterval);
  const results = new Array(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      const file = list[i];
      const metadata = typeof opts.metadata === "function" ? opts.metadata(file, i) : opts.metadata;
      try {
        const value = await upload(file, {
          ...opts,
          metadata,
          onProgress: (p) => {
            loaded[i] = p.loaded;
            totals.part(0, loaded.reduce((a, b) => a + b, 0));
            if (p.loaded === p.total) totals.flush();
            opts.onFileProgress?.({ index: i, file, ...p });
          },
        });
        results[i] = { status: "fulfilled", value };
        opts.onFileComplete?.({ index: i, file, asset: value });
      } catch (reason) {
        results[i] = { status: "rejected", reason };
        opts.onFileError?.({ index: i, file, error: reason });
      }
    }
  };
  totals.start();
  const n = Math.max(1, Math.min(opts.concurrency ?? DEFAULTS.concurrency, list.length));
  await Promise.all(Array.from({ length: n }, worker));
  totals.flush();
  totals.close();
  return results;
}

// ---- Uppy 6: signRequest ----
//
// `@uppy/aws-s3` 6.x has no Companion mode that sends our token: it signs each S3 request
// with `signRequest(req)` and sends it itself, to the URL answered. `req` is one of
//   {method: "PUT", key, contentType}        PutObject          -> POST /v1/uploads (put)
//   {method: "POST", key}                    CreateMultipart    -> POST /v1/companion/s3/multipart
//   {method: "PUT", key, uploadId, partNumber} UploadPart       -> POST /v1/uploads/{id}/parts
//   {method: "GET", key, uploadId}           ListParts          -> GET /v1/uploads/{id}/parts
//   {method: "POST", key, uploadId}          CompleteMultipart  -> POST /v1/uploads/{id}/complete
//   {method: "DELETE", key, uploadId}        AbortMultipart     -> DELETE /v1/uploads/{id}
// and the answer is `{url, key?, headers?}`. The two that move bytes get the broker's own
// presigned store URLs (size, type and checksum pinned). The four control calls are made
// here, against the broker with the user's token, and answered with a `data:` URL holding
// the S3 XML Uppy parses (Uppy's request to it never leaves the page). The key
// `generateObjectKey` made names the Uppy file (its size, type and meta; the requests carry
// none); the broker's key replaces it. Create goes through the Companion route because it
// plans parts the way Uppy slices them (max(5 MiB, size / 10,000); `getChunkSize` pins
// Uppy to it), and each part URL is signed with its part's exact size.

const UPPY_META = new Set(["name", "type", "size", "profile"]);

const xmlEscape = (s) => String(s).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
const xmlAnswer = (xml) => `data:application/xml;charset=utf-8,${encodeURIComponent(xml)}`;
const unquote = (etag) => String(etag ?? "").replace(/^"+|"+$/g, "");
const browserHeaders = (headers) =>
  Object.fromEntries(Object.entries(headers ?? {}).filter(([k]) => !UNSAFE_HEADERS.has(k.toLowerCase())));
const uppyPartSize = (size) => Math.max(5 * MiB, Math.ceil(size / 10000));

/** The app's metadata of an Uppy file: its string-like meta fields but Uppy's and ours. */
function uppyMetadata(file) {
  const out = {};
  for (const [k, v] of Object.entries(file.meta ?? {})) {
    if (UPPY_META.has(k) || v == null || !["string", "number", "boolean"].includes(typeof v)) continue;
    out[k] = String(v);
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Options for `@uppy/aws-s3` 6.x that upload through r2-broker:
 * `uppy.use(AwsS3, createUppySigner({ baseUrl, getToken, uppy }))`. Returns
 * `{ signRequest, generateObjectKey, getChunkSize }` (pass all three). See r2-broker.d.ts.
 */
export function createUppySigner(opts = {}) {
  new Context(opts); // checks baseUrl and getToken now, not at the first upload
  const { uppy } = opts;
  const files = new Map(); // key from generateObjectKey -> the Uppy file's facts and its intent
  const uploads = new Map(); // broker upload id -> { file, partCount, urls, presigning }
  const ctx = () => new Context({ ...opts, resumeStore: false });
  const uppyFile = (id) => {
    try {
      return id ? uppy?.getFile?.(id) : undefined;
    } catch {
      return undefined;
    }
  };

  const fileOf = (key) => {
    const f = files.get(key);
    if (f) return f;
    throw new UploadError("invalid_file",
      `signRequest: unknown key ${JSON.stringify(key)}: pass the generateObjectKey that createUppySigner() returns ` +
      `to AwsS3 too (it tells the signer each file's size and type)`);
  };
  const uploadOf = (id) => {
    let u = uploads.get(id);
    if (!u) uploads.set(id, (u = { file: null, partCount: null, urls: new Map(), presigning: null }));
    return u;
  };
  /** An earlier intent of the same Uppy file that Uppy gave up (a paused or retried PUT). */
  const release = async (f) => {
    const id = f.uploadId;
    if (!id) return;
    f.uploadId = null;
    uploads.delete(id);
    await call(ctx(), "DELETE", `/v1/uploads/${id}`, { key: uuid(), detached: true, retries: 2 }).catch(() => null);
  };

  const generateObjectKey = (file) => {
    const name = file?.name ?? file?.meta?.name ?? "upload";
    const key = `r2b-${uuid()}/${name}`;
    const ext = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
    const metadata = typeof opts.metadata === "function" ? opts.metadata(file) : opts.metadata ?? uppyMetadata(file);
    files.set(key, {
      key,
      fileId: file?.id ?? null,
      name,
      size: file?.size ?? file?.data?.size ?? 0,
      type: file?.type || TYPES[ext] || "application/octet-stream",
      profile: file?.meta?.profile ?? opts.profile,
      metadata,
      data: file?.data ?? null, // for the SHA-256 of a put; dropped once sent
      uploadId: null,
      method: null,
    });
    return key;
  };

  const putObject = async (req) => {
    const f = fileOf(req.key);
    await release(f);
    const c = ctx();
    const body = { filename: f.name, content_type: f.type, size: f.size, method: "put" };
    if (f.profile) body.profile = f.profile;
    if (f.metadata) body.metadata = f.metadata;
    if (f.data && f.size <= c.checksumMaxSize) {
      const sum = await sha256(f.data);
      if (sum) body.checksum_sha256 = sum;
    }
    const intent = await call(c, "POST", "/v1/uploads", { body, key: uuid() });
    Object.assign(f, { uploadId: intent.upload_id, method: "put", data: null });
    return { url: intent.url, key: intent.key, headers: browserHeaders(intent.headers) };
  };

  const createMultipart = async (req) => {
    const f = fileOf(req.key);
    await release(f);
    const metadata = { ...f.metadata, size: String(f.size) };
    if (f.profile) metadata.profile = f.profile;
    const started = await call(ctx(), "POST", "/v1/companion/s3/multipart", {
      body: { filename: f.name, type: f.type, metadata },
    });
    Object.assign(f, { uploadId: started.uploadId, method: "multipart", data: null });
    Object.assign(uploadOf(started.uploadId), { file: f, partCount: Math.ceil(f.size / uppyPartSize(f.size)) });
    const xml = `<InitiateMultipartUploadResult><Key>${xmlEscape(started.key)}</Key>` +
      `<UploadId>${xmlEscape(started.uploadId)}</UploadId></InitiateMultipartUploadResult>`;
    return { url: xmlAnswer(xml), key: started.key };
  };

  /** A part URL, presigned in batches (the parts that follow, up to `presignBatch`); each
   * URL is handed out once: Uppy asking again means the last attempt is over. */
  const uploadPart = async (req) => {
    const id = req.uploadId;
    const n = req.partNumber;
    const u = uploadOf(id);
    const c = ctx();
    for (;;) {
      const p = u.urls.get(n);
      if (p && p.expiresAt - 60_000 > Date.now()) {
        u.urls.delete(n);
        return { url: p.url, headers: browserHeaders(p.headers) };
      }
      if (!u.presigning) {
        const last = u.partCount ? Math.min(u.partCount, n + c.presignBatch - 1) : n;
        const part_numbers = [];
        for (let i = n; i <= last; i++) if (i === n || !u.urls.has(i)) part_numbers.push(i);
        u.presigning = call(c, "POST", `/v1/uploads/${id}/parts`, { body: { part_numbers } })
          .then((r) => {
            const expiresAt = Date.parse(r.expires_at);
            for (const p of r.parts) u.urls.set(p.part_number, { ...p, expiresAt });
            if (!r.parts.some((p) => p.part_number === n)) {
              throw new UploadError("bad_response", `no URL for part ${n}`, { uploadId: id });
            }
          })
          .finally(() => (u.presigning = null));
        await u.presigning;
      } else {
        await u.presigning.catch(() => null);
      }
    }
  };

  const listParts = async (req) => {
    const id = req.uploadId;
    const listing = await call(ctx(), "GET", `/v1/uploads/${id}/parts`);
    const u = uploadOf(id);
    const { part_size: ps, part_count: count } = listing;
    u.partCount = count;
    const size = u.file?.size;
    // Only parts of the planned size count as sent (Uppy sends the others again). The
    // ETag is the store's when it lists one; complete takes the store's listing anyway.
    const ok = (p) =>
      p.part_number >= 1 && p.part_number <= count &&
      (size != null ? p.size === partLength(size, ps, p.part_number) : p.part_number < count ? p.size === ps : p.size > 0 && p.size <= ps);
    const xml = listing.parts.filter(ok).map((p) =>
      `<Part><PartNumber>${p.part_number}</PartNumber><ETag>${xmlEscape(unquote(p.etag) || "listed")}</ETag>` +
      `<Size>${p.size}</Size></Part>`).join("");
    return { url: xmlAnswer(`<ListPartsResult><UploadId>${xmlEscape(id)}</UploadId>${xml}</ListPartsResult>`) };
  };

  const completeMultipart = async (req) => {
    const id = req.uploadId;
    const asset = await complete(ctx(), id, undefined);
    const u = uploads.get(id);
    uploads.delete(id);
    if (u?.file) files.delete(u.file.key);
    opts.onAsset?.(asset, uppyFile(u?.file?.fileId));
    const location = `${String(opts.baseUrl).replace(/\/+$/, "")}/v1/assets/${asset.id}`;
    const xml = `<CompleteMultipartUploadResult><Location>${xmlEscape(location)}</Location>` +
      `<Key>${xmlEscape(asset.key)}</Key><ETag>${xmlEscape(unquote(asset.etag))}</ETag></CompleteMultipartUploadResult>`;
    return { url: xmlAnswer(xml), key: asset.key };
  };

  const abortMultipart = async (req) => {
    const id = req.uploadId;
    const u = uploads.get(id);
    uploads.delete(id);
    if (u?.file) files.delete(u.file.key);
    await call(ctx(), "DELETE", `/v1/uploads/${id}`, { key: uuid(), retries: 2 });
    return { url: xmlAnswer("") };
  };

  const signRequest = async (req) => {
    const { method, uploadId } = req ?? {};
    if (method === "PUT" && uploadId == null) return putObject(req);
    if (method === "POST" && uploadId == null) return createMultipart(req);
    if (method === "PUT" && Number.isInteger(req.partNumber)) return uploadPart(req);
    if (method === "GET" && uploadId != null) return listParts(req);
    if (method === "POST" && uploadId != null) return completeMultipart(req);
    if (method === "DELETE" && uploadId != null) return abortMultipart(req);
    throw new UploadError("bad_response", `signRequest: r2-broker does not sign ${method} ${req?.key ?? ""} (DeleteObject: delete the asset)`);
  };

  if (uppy) {
    // Single PUTs: Uppy never calls after them. Complete at once (the asset now, verified)
    // rather than waiting for the broker's confirmer, and release the intent of a PUT that
    // failed or was removed rather than waiting for it to expire.
    const entriesOf = (file) => [...files.values()].filter((f) => f.fileId != null && f.fileId === file?.id);
    uppy.on("upload-success", (file) => {
      for (const f of entriesOf(file)) {
        if (f.method !== "put" || !f.uploadId) continue;
        files.delete(f.key);
        complete(ctx(), f.uploadId, undefined).then(
          (asset) => opts.onAsset?.(asset, uppyFile(file.id) ?? file),
          (e) => uppy.log?.(`r2-broker: complete ${f.uploadId}: ${e.message}`, "error"),
        );
      }
    });
    // A multipart upload is kept for a retry (Uppy resumes it); Uppy aborts it on removal.
    const drop = (file) => {
      for (const f of entriesOf(file)) {
        if (f.method === "multipart") continue;
        files.delete(f.key);
        release(f);
      }
    };
    uppy.on("upload-error", drop);
    uppy.on("file-removed", drop);
  }

  // Uppy 6's default too; set explicitly so that the parts always match the broker's plan.
  const getChunkSize = ({ size }) => uppyPartSize(size);
  return { signRequest, generateObjectKey, getChunkSize };
}
