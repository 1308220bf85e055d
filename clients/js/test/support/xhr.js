// A minimal XMLHttpRequest over node:http, so that the client's browser path (XHR with
// upload progress events) runs in Node too. Progress fires as chunks reach the socket.
// Only what r2-broker.js uses: open, setRequestHeader, send(Blob), abort, getResponseHeader,
// upload.onprogress, onload, onerror, status, responseText.

import http from "node:http";

export class NodeXHR {
  static instances = [];

  constructor() {
    this.upload = { onprogress: null };
    this.status = 0;
    this.responseText = "";
    this.headers = {};
    this.aborted = false;
    NodeXHR.instances.push(this);
  }

  open(method, url) {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name, value) {
    if (/^(content-length|host)$/i.test(name)) throw new Error(`refused to set unsafe header ${name}`);
    this.headers[name] = value;
  }

  getResponseHeader(name) {
    return this.response?.headers[name.toLowerCase()] ?? null;
  }

  async send(blob) {
    const body = Buffer.from(await blob.arrayBuffer());
    if (this.aborted) return;
    const req = (this.req = http.request(this.url, { method: this.method, headers: { ...this.headers, "content-length": body.length } }));
    req.on("error", () => !this.aborted && this.onerror?.());
    req.on("response", (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        this.response = res;
        this.status = res.statusCode;
        this.responseText = Buffer.concat(chunks).toString("utf8");
        if (!this.aborted) this.onload?.();
      });
    });
    const CHUNK = 256 * 1024;
    let sent = 0;
    for (let off = 0; off < body.length && !this.aborted; off += CHUNK) {
      const piece = body.subarray(off, off + CHUNK);
      await new Promise((resolve) => req.write(piece, resolve));
      sent += piece.length;
      this.upload.onprogress?.({ loaded: sent, total: body.length, lengthComputable: true });
    }
    if (!this.aborted) req.end();
  }

  abort() {
    this.aborted = true;
    this.req?.destroy();
  }
}
