// Compiled by `npm run typecheck` (tsc --noEmit) only: the hand-kept r2-broker.d.ts must
// accept the documented usage and refuse misuse. Imports the package by its own name, so
// package.json's "exports" are checked too.

import { upload, uploadMany, request, memoryStore, indexedDBStore, UploadError, createUppySigner } from "@r2-broker/client";
import type { Asset, ResumeStore, UploadResult, UploadErrorCode, UppySigner } from "@r2-broker/client";

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

/** An Uppy-shaped stand-in (the package depends on no Uppy types). */
declare const uppy: {
  on(event: string, handler: (...args: any[]) => void): unknown;
  getFile(id: string): { id: string; name: string; size: number | null; meta: Record<string, unknown> };
  use(plugin: unknown, opts: Pick<UppySigner, "signRequest" | "generateObjectKey" | "getChunkSize">): unknown;
};
declare const AwsS3: unknown;

async function uppy6(): Promise<void> {
  uppy.use(AwsS3, createUppySigner({ baseUrl: "https://uploads.example.com", getToken: () => "jwt", uppy }));
  const signer = createUppySigner({
    baseUrl: "/",
    token: "jwt",
    profile: "photos",
    metadata: (f) => ({ album: String(f.meta?.album ?? "") }),
    onAsset: (asset, file) => console.log(asset.id, file?.name),
  });
  const key = signer.generateObjectKey({ id: "f", name: "a.jpg", type: "image/jpeg", size: 3, data: new Blob(["abc"]), meta: {} });
  const { url, headers } = await signer.signRequest({ method: "PUT", key, contentType: "image/jpeg" });
  await signer.signRequest({ method: "PUT", key, uploadId: "u", partNumber: 1 });
  console.log(url, headers);
  // @ts-expect-error not a method Uppy signs
  await signer.signRequest({ method: "PATCH", key });
  // @ts-expect-error baseUrl is required
  createUppySigner({ token: "jwt" });
}

void usage;
void uppy6;
