// The demo page `r2-broker dev` serves at / (src/dev/pages/): files dropped on it become assets
// shown in its gallery, a failed file is retried with its button; a screenshot is kept in
// target/browser-artifacts/demo.png.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as h from "./support/harness.js";

const env = h.setup();

const rows = (state) => `#rows li[data-state="${state}"]`;

/** Once `n` rows are there and none is queued or uploading: each row's name, state and text. */
async function settled(page, n) {
  await page.waitForFunction((count) => {
    const all = document.querySelectorAll("#rows li");
    return all.length === count && ![...all].some((li) => ["queued", "uploading"].includes(li.dataset.state));
  }, n);
  return page.$$eval("#rows li", (lis) => lis.map((li) => `${li.dataset.state}: ${li.textContent}`));
}

/** In the page: drops `files` (`{ name, type, text }`, or `{ name, png: true }` for an image
 * drawn on a canvas) on the drop zone, as a drag from the desktop does; resolves with their bytes. */
function dropFiles(page, files) {
  return page.evaluate(async (specs) => {
    const canvasPng = () => {
      const canvas = Object.assign(document.createElement("canvas"), { width: 320, height: 200 });
      const g = canvas.getContext("2d");
      const fill = g.createLinearGradient(0, 0, 320, 200);
      fill.addColorStop(0, "#f38020");
      fill.addColorStop(1, "#1d4ed8");
      g.fillStyle = fill;
      g.fillRect(0, 0, 320, 200);
      g.fillStyle = "#fff";
      g.font = "bold 28px sans-serif";
      g.fillText("r2-broker", 24, 110);
      return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    };
    const list = await Promise.all(specs.map(async (s) =>
      new File([s.png ? await canvasPng() : s.text], s.name, { type: s.png ? "image/png" : s.type })));
    const dt = new DataTransfer();
    list.forEach((f) => dt.items.add(f));
    document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    return Promise.all(list.map(async (f) => ({ name: f.name, bytes: [...new Uint8Array(await f.arrayBuffer())] })));
  }, files);
}

test("demo page: dropped files are uploaded and shown in the gallery; a failed one is retried", async (t) => {
  const { owner, token } = h.newOwner("br-demo");
  const { page } = await h.openPage(t, env.browser, `${h.API}/#token=${token}`);
  await page.waitForSelector("body[data-ready]");
  assert.equal(new URL(page.url()).hash, "", "the token is dropped from the address bar");
  assert.equal(await page.textContent("#whoami"), `owner: ${owner}`);

  // 1. Two files dropped at once: both uploaded, then shown (the image as an image).
  const sent = await dropFiles(page, [{ name: "gradient.png", png: true }, { name: "notes.txt", type: "text/plain", text: "notes from the demo test\n" }]);
  const first = await settled(page, 2);
  assert.ok(first.every((r) => r.startsWith("done")), first.join("\n"));
  await page.waitForFunction(() => document.querySelectorAll("#gallery li").length === 2);
  await page.waitForFunction(() => [...document.querySelectorAll("#gallery img")].every((i) => i.complete && i.naturalWidth === 320));
  assert.deepEqual(await page.$$eval("#gallery img", (imgs) => imgs.map((i) => i.alt)), ["gradient.png"]);
  assert.deepEqual(await page.$$eval("#gallery a.file", (links) => links.map((a) => a.textContent)), ["notes.txt"]);

  // 2. A file the store refuses (403 AccessDenied: not retryable) fails with a Retry button,
  //    which uploads it once the store takes it.
  const refuse = (url) => url.origin === h.STORE && !url.searchParams.has("partNumber");
  await page.route(refuse, (route) => (route.request().method() === "PUT"
    ? route.fulfill({ status: 403, headers: { "access-control-allow-origin": "*", "content-type": "application/xml" },
      body: "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" })
    : route.continue()));
  sent.push(...await dropFiles(page, [{ name: "retry.txt", type: "text/plain", text: "retried\n" }]));
  await page.waitForSelector(`${rows("failed")} button.retry`);
  assert.match(await page.textContent(rows("failed")), /AccessDenied/);
  await page.unroute(refuse);
  await page.click(`${rows("failed")} button.retry`);
  const all = await settled(page, 3);
  assert.ok(all.every((r) => r.startsWith("done")), all.join("\n"));
  await page.waitForFunction(() => document.querySelectorAll("#gallery li").length === 3);
  assert.match(await page.textContent("#total-label"), /^3 of 3 files/);
  await page.screenshot({ path: h.artifact("demo.png"), fullPage: true });

  // 3. What the broker and the store hold: the three files, byte for byte.
  const { items } = await h.api(token, "GET", "/v1/assets");
  assert.deepEqual(items.map((a) => a.filename).sort(), ["gradient.png", "notes.txt", "retry.txt"]);
  for (const f of sent) {
    const asset = items.find((a) => a.filename === f.name);
    await h.assertStored(token, asset, Buffer.from(f.bytes));
  }
  await h.assertNothingReserved(token); // the refused upload's intent was aborted
});
