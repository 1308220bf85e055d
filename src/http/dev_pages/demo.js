// The dev demo page (src/dev/pages.rs serves it at / in `r2-broker dev` only). Everything that
// talks to the broker or the store is the JS client's: uploadMany for each drop (and each
// retry), request for the gallery. This file only draws.

import { uploadMany, request } from "/client/r2-broker.js";

const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
const profileInput = $("profile");

// The token: from the banner's link (/#token=…), else what this tab was given before.
// The link's fragment is dropped from the address bar once read (a reload finds it here).
const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromLink) {
  sessionStorage.setItem("r2b-dev-token", fromLink);
  history.replaceState(null, "", location.pathname + location.search);
}
tokenInput.value = sessionStorage.getItem("r2b-dev-token") ?? "";
const saveToken = () => {
  sessionStorage.setItem("r2b-dev-token", tokenInput.value.trim());
  showOwner();
  refreshGallery();
};
tokenInput.addEventListener("change", saveToken);

const options = () => ({
  baseUrl: location.origin,
  getToken: () => tokenInput.value.trim(),
  profile: profileInput.value.trim() || undefined,
});

function showOwner() {
  let sub = null;
  try {
    const payload = tokenInput.value.trim().split(".")[1];
    sub = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch {
    // not a JWT (yet)
  }
  $("whoami").textContent = sub ? `owner: ${sub}` : "no token: paste the one r2-broker dev printed";
}

// ---- the queue: one row per file ----

const rows = [];
let queue = Promise.resolve(); // batches run one after another: at most 5 files at once
let started = null; // { at, bytes } when the queue last went busy (for the throughput line)

function addRows(files) {
  const added = [];
  for (const file of files) {
    const li = document.createElement("li");
    li.className = "row";
    li.innerHTML = `<span class="name"></span><progress max="1" value="0"></progress><span class="status"></span>`;
    li.querySelector(".name").textContent = `${file.name} (${size(file.size)})`;
    const row = { file, li, loaded: 0, state: "" };
    $("rows").append(li);
    rows.push(row);
    added.push(row);
  }
  $("queue").hidden = false;
  return added;
}

function setState(row, state, text) {
  row.state = state;
  row.li.dataset.state = state;
  const status = row.li.querySelector(".status");
  status.textContent = text;
  if (state === "failed") {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => enqueue([row]));
    status.append(" ", retry);
  }
}

function enqueue(batch) {
  for (const row of batch) {
    row.loaded = 0;
    row.li.querySelector("progress").value = 0;
    setState(row, "queued", "queued");
  }
  started ??= { at: performance.now(), bytes: loadedBytes() };
  queue = queue.then(() => runBatch(batch));
  return queue;
}

async function runBatch(batch) {
  const onFileProgress = ({ index, loaded, total }) => {
    const row = batch[index];
    row.loaded = loaded;
    row.li.querySelector("progress").value = total ? loaded / total : 1;
    setState(row, "uploading", loaded === total ? "completing…" : `${size(loaded)} of ${size(total)}`);
    drawTotal();
  };
  const results = await uploadMany(batch.map((r) => r.file), { ...options(), concurrency: 5, onFileProgress });
  results.forEach((r, i) => {
    const row = batch[i];
    if (r.status === "fulfilled") {
      row.loaded = row.file.size;
      row.li.querySelector("progress").value = 1;
      row.li.dataset.assetId = r.value.id;
      setState(row, "done", "done");
    } else {
      const e = r.reason;
      setState(row, "failed", `failed: ${e.message}${e.code ? ` (${e.code})` : ""}`);
    }
  });
  drawTotal();
  refreshGallery();
}

const loadedBytes = () => rows.reduce((s, r) => s + Math.min(r.loaded, r.file.size), 0);

function drawTotal() {
  const total = rows.reduce((s, r) => s + r.file.size, 0);
  const loaded = loadedBytes();
  const done = rows.filter((r) => r.state === "done").length;
  const failed = rows.filter((r) => r.state === "failed").length;
  const busy = rows.some((r) => r.state === "queued" || r.state === "uploading");
  $("total").value = total ? loaded / total : 1;
  let text = `${done} of ${rows.length} files, ${size(loaded)} of ${size(total)}`;
  if (failed) text += `, ${failed} failed`;
  if (!busy && started != null) {
    const secs = (performance.now() - started.at) / 1000;
    const sent = loaded - started.bytes;
    text += `; the last ${size(sent)} in ${secs.toFixed(1)} s (${size(Math.round(sent / secs))}/s)`;
    started = null;
  }
  $("total-label").textContent = text;
  $("queue").dataset.busy = String(busy);
}

// ---- the gallery: the owner's assets through download URLs ----

const SHOWN = /^image\/(png|jpeg|gif|webp|avif|apng|bmp|x-icon|vnd\.microsoft\.icon)$/i; // what <img> renders
let galleryRun = 0;

async function refreshGallery() {
  const run = ++galleryRun;
  const status = $("gallery-status");
  if (!tokenInput.value.trim()) {
    status.textContent = "";
    $("gallery").replaceChildren();
    return;
  }
  const opts = { ...options(), retries: 1 };
  try {
    const page = await request(opts, "GET", "/v1/assets?limit=60"); // every profile's
    const ids = page.items.map((a) => a.id);
    const { urls } = ids.length
      ? await request(opts, "POST", "/v1/assets/download-urls", { body: { ids, disposition: "inline" } })
      : { urls: {} };
    if (run !== galleryRun) return;
    $("gallery").replaceChildren(...page.items.map((a) => tile(a, urls[a.id]?.url)));
    status.textContent = page.items.length
      ? `${page.items.length} newest${page.next_cursor ? " (more exist)" : ""}`
      : "none yet: drop a file above";
    document.body.dataset.gallery = String(page.items.length);
  } catch (e) {
    if (run === galleryRun) status.textContent = `could not list assets: ${e.message}`;
  }
}

function tile(asset, url) {
  const li = document.createElement("li");
  li.dataset.assetId = asset.id;
  const link = document.createElement("a");
  link.href = url ?? "#";
  link.target = "_blank";
  link.rel = "noopener";
  if (url && SHOWN.test(asset.content_type)) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = asset.filename;
    img.loading = "lazy";
    link.append(img);
  } else {
    link.className = "file";
    link.textContent = asset.filename;
  }
  const caption = document.createElement("span");
  caption.className = "muted";
  caption.textContent = `${asset.content_type}, ${size(asset.size)}`;
  li.append(link, caption);
  return li;
}

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

// ---- drop zone and file picker ----

const drop = $("drop");
const take = (files) => {
  if (!files.length) return;
  if (!tokenInput.value.trim()) {
    $("whoami").textContent = "a token first: paste the one r2-broker dev printed";
    tokenInput.focus();
    return;
  }
  enqueue(addRows([...files]));
};
// A file dropped beside the zone must not navigate away from the page.
for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
drop.addEventListener("dragover", () => drop.classList.add("over"));
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  drop.classList.remove("over");
  take(e.dataTransfer?.files ?? []);
});
$("files").addEventListener("change", (e) => {
  take(e.target.files);
  e.target.value = "";
});
$("refresh").addEventListener("click", refreshGallery);

showOwner();
refreshGallery();
document.body.dataset.ready = "true";
