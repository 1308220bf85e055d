// Compiled by `npm run typecheck` (tsc --noEmit) only: the hand-kept r2-broker.d.ts must
// accept the documented usage and refuse misuse. Imports the package by its own name, so
// package.json's "exports" are checked too.

import { upload, uploadMany, request, memoryStore, indexedDBStore, UploadError } from "@r2-broker/client";
import type { Asset, ResumeStore, UploadResult, UploadErrorCode } from "@r2-broker/client";

declare const file: File;
declare const files: FileList;

async function usage(): Promise<void> {
  const controller = new AbortController();
  const asset: Asset = await upload(file, {
    baseUrl: "https://uploads.example.com",
    getToken: async () => "jwt",
    profile: "photos",
    metadata: { album: "summer" },
    signal: controller.signal,
    onProgress: ({ loaded, total }) => console.log(loaded / total),
  });
  const id: string = asset.id;
  const sum: string | null = asset.checksum_sha256;

  const results: UploadResult[] = await uploadMany(files, {
    baseUrl: "https://uploads.example.com",
    getToken: () => "jwt",
    concurrency: 5,
    metadata: (f, i) => ({ index: String(i), size: String(f.size) }),
    onFileProgress: ({ index, loaded, total }) => console.log(index, loaded, total),
    onTotalProgress: ({ loaded, total }) => console.log(loaded, total),
    resumeStore: indexedDBStore("my-app"),
  });
  for (const r of results) {
    if (r.status === "fulfilled") console.log(r.value.key);
    else console.log(r.reason.code, r.reason.message, r.reason.requestId);
  }

  const pause = new AbortController();
  const store: ResumeStore = memoryStore();
  await upload(file, { baseUrl: "/", token: "jwt", pauseSignal: pause.signal, resumeStore: store, transport: "fetch" });

  const usage = await request<{ reserved_bytes: number }>({ baseUrl: "/", token: "jwt" }, "GET", "/v1/usage");
  console.log(usage.reserved_bytes, id, sum);

  try {
    await upload(file, { baseUrl: "/", token: "jwt" });
  } catch (e) {
    if (e instanceof UploadError) {
      const code: UploadErrorCode = e.code;
      if (code === "quota_exceeded" || code === "etag_not_exposed") console.log(e.status, e.retryable);
    }
  }

  // @ts-expect-error baseUrl is required
  await upload(file, { token: "jwt" });
  // @ts-expect-error no such method
  await upload(file, { baseUrl: "/", token: "jwt", method: "post" });
  // @ts-expect-error not an error code
  const bad: UploadErrorCode = "oops";
  console.log(bad);
}

void usage;
