// A counting, fault-injecting HTTP proxy pair in front of the real broker and store.
//
// The broker proxy rewrites the store's address in the broker's JSON answers to the store
// proxy's, so the client sends its PUTs through the store proxy; that one forwards them
// with the original `Host` (signed into the presigned URL), so the store's SigV4 checks
// still pass. Each proxy logs every request and can, per request, answer by itself, hang,
// delay, cut the connection, or strip response headers (what a browser's CORS would hide).

import http from "node:http";
import { API, STORE } from "./broker.js";

/**
 * @param {string} target  origin to forward to
 * @param {{ rewrite?: () => [string, string] | null, bufferBody?: boolean }} o
 */
export async function startProxy(target, { rewrite = () => null, bufferBody = false } = {}) {
  const up = new URL(target);
  const sockets = new Set();
  const proxy = {
    url: "",
    log: [],
    inflight: 0,
    maxInflight: 0,
    /** (entry) => action | undefined; see handle() for the actions. */
    hook: null,
    /** A hook that holds each request until `n` are in flight (at most `ms`), so that a
     * concurrency limit is reached for sure and `maxInflight` shows it. */
    barrier(n, ms = 1000) {
      return async () => {
        const t0 = Date.now();
        while (this.inflight < n && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 5));
      };
    },
    reset() {
      this.log = [];
      this.maxInflight = 0;
      this.hook = null;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const server = http.createServer(async (req, res) => {
    proxy.inflight++;
    proxy.maxInflight = Math.max(proxy.maxInflight, proxy.inflight);
    res.on("close", () => proxy.inflight--);
    const url = new URL(req.url, "http://proxy");
    const entry = { method: req.method, path: url.pathname, query: url.searchParams, headers: req.headers, body: null };
    let buffered = null;
    if (bufferBody) {
      buffered = await readAll(req);
      entry.body = buffered.length ? JSON.parse(buffered.toString("utf8")) : null;
    }
    proxy.log.push(entry);
    const action = (proxy.hook && (await proxy.hook(entry))) || {};
    try {
      await handle(action, req, res, buffered);
    } catch (e) {
      if (!res.headersSent) res.writeHead(502).end(String(e));
      else res.destroy();
    }
  });

  async function handle(action, req, res, buffered) {
    if (action.hang) return; // never answers; the client gives up or the proxy closes
    if (action.destroy) return req.socket.destroy(); // a cut connection: a network error
    if (action.status) {
      res.writeHead(action.status, action.headers ?? {});
      return res.end(action.body ?? "");
    }
    if (action.delay) await new Promise((r) => setTimeout(r, action.delay));
    const answer = await forward(req, buffered);
    if (action.drop) {
      // The upstream did the work, but its answer never reaches the client.
      action.afterUpstream?.(answer);
      return req.socket.destroy();
    }
    const headers = { ...answer.headers };
    for (const h of action.stripResponseHeaders ?? []) delete headers[h];
    let body = answer.body;
    const swap = rewrite();
    if (swap && /json/.test(headers["content-type"] ?? "")) {
      body = Buffer.from(body.toString("utf8").replaceAll(swap[0], swap[1]));
    }
    delete headers["transfer-encoding"];
    headers["content-length"] = String(body.length);
    res.writeHead(answer.status, headers);
    res.end(body);
  }

  function forward(req, buffered) {
    return new Promise((resolve, reject) => {
      const out = http.request({
        hostname: up.hostname,
        port: up.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: up.host },
      });
      out.on("response", async (r) => {
        try {
          resolve({ status: r.statusCode, headers: r.headers, body: await readAll(r) });
        } catch (e) {
          reject(e);
        }
      });
      out.on("error", reject);
      req.on("aborted", () => out.destroy());
      if (buffered) out.end(buffered);
      else req.pipe(out);
    });
  }

  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  return proxy;
}

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

/** The broker and store proxies, wired together. */
export async function startProxies() {
  const store = await startProxy(STORE);
  const broker = await startProxy(API, { bufferBody: true, rewrite: () => [STORE, store.url] });
  return {
    api: broker.url,
    broker,
    store,
    /** Part PUTs the store proxy saw, as part numbers in order. */
    partPuts: () => store.log.filter((e) => e.method === "PUT" && e.query.has("partNumber")).map((e) => Number(e.query.get("partNumber"))),
    /** Forget the logs and hooks (between two phases of a test). */
    reset() {
      broker.reset();
      store.reset();
    },
    brokerCalls: (method, re) => broker.log.filter((e) => e.method === method && re.test(e.path)),
    close: () => Promise.all([broker.close(), store.close()]),
  };
}
