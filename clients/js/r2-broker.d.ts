// Types of @r2-broker/client (r2-broker.js), kept by hand; `npm run typecheck` checks them
// against test/types.ts. The shapes follow r2-broker's openapi.yaml.

/** Error codes of the broker (openapi.yaml, `Error`). */
export type BrokerErrorCode =
  | "invalid_request"
  | "method_not_supported"
  | "unauthorized"
  | "forbidden"
  | "quota_exceeded"
  | "not_found"
  | "method_not_allowed"
  | "object_missing"
  | "invalid_state"
  | "upload_expired"
  | "file_too_large"
  | "unsupported_content_type"
  | "verification_failed"
  | "rate_limited"
  | "request_timeout"
  | "unavailable";

/** Error codes of the client itself. */
export type ClientErrorCode =
  /** no answer (connection refused or cut, CORS refusal, stalled upload), after every retry */
  | "network_error"
  /** the store refused a PUT (`storeCode` holds its S3 `<Code>`) */
  | "store_error"
  /** a presigned URL expired and could not be replaced */
  | "url_expired"
  /** the store's CORS rule hides `ETag` on part PUTs: add `"ExposeHeaders": ["ETag"]` */
  | "etag_not_exposed"
  /** `signal` was aborted: the intent was aborted too (reservation released) */
  | "aborted"
  /** `pauseSignal` was aborted: the intent is kept; upload the same file again to resume */
  | "paused"
  /** an answer that does not fit the contract */
  | "bad_response"
  /** upload() was not given a Blob, or signRequest a key that generateObjectKey did not make */
  | "invalid_file";

export type UploadErrorCode = BrokerErrorCode | ClientErrorCode;

export class UploadError extends Error {
  readonly name: "UploadError";
  /** The broker's `error.code`, or one of the client's own codes. */
  readonly code: UploadErrorCode;
  /** HTTP status of the answer (0 when there was none). */
  readonly status: number;
  /** The broker's `request_id` (equals its `x-request-id`), for support. */
  readonly requestId: string | null;
  /** Transient (network, 5xx, 429): it was retried, and trying again later may succeed. */
  readonly retryable: boolean;
  /** Seconds from `Retry-After`, when the answer had one. */
  readonly retryAfter: number | null;
  /** The upload intent concerned, when there was one. */
  readonly uploadId: string | null;
  /** The store's S3 error `<Code>` for `store_error` / `url_expired`. */
  readonly storeCode: string | null;
  constructor(code: UploadErrorCode, message: string, extra?: Record<string, unknown>);
}

/** The verified asset that `complete` answers with (openapi.yaml, `Asset`). */
export interface Asset {
  id: string;
  owner: string;
  profile: string;
  key: string;
  filename: string;
  content_type: string;
  size: number;
  checksum_sha256: string | null;
  etag: string;
  metadata: Record<string, string>;
  visibility: "private" | "public";
  /** `processing` while the profile's scanners and image variants run; download URLs come once `ready`. */
  state: "processing" | "ready" | "rejected" | "quarantined";
  /** Why it is `rejected` or `quarantined`. */
  state_reason: string | null;
  variants: Variant[];
  collection: string | null;
  /** When its profile's retention deletes it. */
  expires_at: string | null;
  created_at: string;
}

/** An image variant the broker made (`download-url?variant=<name>` serves it). */
export interface Variant {
  name: string;
  key: string;
  content_type: "image/jpeg" | "image/webp";
  width: number;
  height: number;
  size: number;
}

export interface Progress {
  /** Bytes sent so far (never decreases while one intent lasts). */
  loaded: number;
  total: number;
}

/** What is remembered per file so that an upload resumes after a reload or restart. */
export interface ResumeRecord {
  upload_id: string;
  method: "put" | "multipart";
  part_size: number | null;
  part_count: number | null;
  expires_at: string;
  created_at: string;
}

/** Where resume records live; any async key-value store fits (AsyncStorage wrapped, say). */
export interface ResumeStore {
  get(key: string): Promise<ResumeRecord | undefined>;
  set(key: string, value: ResumeRecord): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface RetryInfo {
  attempt: number;
  /** Milliseconds until the next attempt. */
  delay: number;
  error: UploadError;
}

/** Options of a broker call (request()) and the base of upload()'s options. */
export interface ClientOptions {
  /** The broker, e.g. `https://uploads.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** Called before every broker request (tokens rotate). */
  getToken?: () => string | Promise<string>;
  /** A fixed token, instead of getToken. */
  token?: string;
  /** Cancels: in-flight requests stop and the upload intent is aborted. */
  signal?: AbortSignal;
  /** Retries per request after the first attempt (5). */
  retries?: number;
  /** First backoff step in ms (500); doubles per retry, with jitter, never below Retry-After. */
  retryDelay?: number;
  /** Longest wait in ms (30000); a longer Retry-After fails the request instead. */
  maxRetryDelay?: number;
  /** Timeout of one broker call in ms (30000; complete gets 4 times as long). */
  requestTimeout?: number;
  /** Called before each retry. */
  onRetry?: (info: RetryInfo) => void;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface UploadOptions extends ClientOptions {
  /** The broker profile whose rules apply (`default`). */
  profile?: string;
  /** Flat string metadata kept on the asset (at most 2,048 bytes as JSON). */
  metadata?: Record<string, string>;
  /** One of the owner's collections (its id): its limits apply too, and the asset is listed in it. */
  collection?: string;
  /** Defaults to `file.name` (then "upload"). */
  filename?: string;
  /** Defaults to `file.type`, then a guess from the extension, then application/octet-stream. */
  contentType?: string;
  /** Forces a method; by default the broker picks put or multipart by the profile's threshold. */
  method?: "put" | "multipart";
  /** Pauses: in-flight requests stop, the intent and its resume record are kept. */
  pauseSignal?: AbortSignal;
  /** Byte progress, at most every `progressInterval` ms (XHR: while bytes move; fetch: per part). */
  onProgress?: (p: Progress) => void;
  /** Milliseconds between progress calls (100). */
  progressInterval?: number;
  /** Parts sent at once (6). */
  partConcurrency?: number;
  /** put uploads up to this size send their SHA-256, when crypto.subtle exists (8 MiB). */
  checksumMaxSize?: number;
  /** An XHR PUT with no progress for this long (ms, 60000) is cut and retried. */
  stallTimeout?: number;
  /** Part URLs asked for per call (100; the broker takes 1 to 1000). */
  presignBatch?: number;
  /** Resume records: IndexedDB in browsers, memory elsewhere, or `false` for none. */
  resumeStore?: ResumeStore | false | null;
  /** Complete without the part list when the store's CORS hides `ETag`, instead of failing. */
  allowMissingETag?: boolean;
  /** `xhr` (upload progress; the default where XMLHttpRequest exists) or `fetch`. */
  transport?: "auto" | "xhr" | "fetch";
}

export interface FileEvent {
  index: number;
  file: Blob;
}

export interface UploadManyOptions extends Omit<UploadOptions, "metadata" | "onProgress"> {
  /** Files at once (5). */
  concurrency?: number;
  metadata?: Record<string, string> | ((file: Blob, index: number) => Record<string, string> | undefined);
  onFileProgress?: (p: FileEvent & Progress) => void;
  /** Bytes of all files together. */
  onTotalProgress?: (p: Progress) => void;
  onFileComplete?: (e: FileEvent & { asset: Asset }) => void;
  onFileError?: (e: FileEvent & { error: UploadError }) => void;
}

export type UploadResult =
  | { status: "fulfilled"; value: Asset }
  | { status: "rejected"; reason: UploadError };

/** Uploads one file (put or multipart, as the broker decides) and resolves with the asset. */
export function upload(file: Blob, options: UploadOptions): Promise<Asset>;

/** Uploads files `concurrency` at a time; one result per file, in order (like allSettled). */
export function uploadMany(files: Iterable<Blob> | ArrayLike<Blob>, options: UploadManyOptions): Promise<UploadResult[]>;

/** One broker request with auth, retries and UploadError; resolves with the JSON (null for 204). */
export function request<T = unknown>(
  options: ClientOptions,
  method: string,
  path: string,
  init?: { body?: unknown; idempotencyKey?: string },
): Promise<T>;

/** Resume records in memory (the default outside browsers). */
export function memoryStore(): ResumeStore;

/** Resume records in IndexedDB (the default in browsers and workers). */
export function indexedDBStore(dbName?: string): ResumeStore;

// ---- Uppy 6 (`@uppy/aws-s3` 6.x `signRequest`) ----
// Structural types, so that this package depends on no Uppy package; they accept what
// @uppy/aws-s3 6.3 passes (its `PresignableRequest`, `UppyFile`) and return what it takes.

/** A request `@uppy/aws-s3` 6.x asks to have signed (its `PresignableRequest`). */
export interface UppySignableRequest {
  method: "PUT" | "POST" | "GET" | "DELETE";
  key: string;
  /** Multipart calls: the broker's upload id (what the signed CreateMultipartUpload answered). */
  uploadId?: string;
  /** UploadPart. */
  partNumber?: number;
  /** PutObject: the file's type. */
  contentType?: string;
  expiresIn?: number;
}

/** What signRequest answers (Uppy's `PresignedResponse`): the URL Uppy sends the request to
 * (a presigned store URL for PutObject and UploadPart, a `data:` URL holding the S3 XML
 * answer for the control calls), the broker's object key, and the headers to send. */
export interface UppySignedRequest {
  url: string;
  key?: string;
  headers?: Record<string, string>;
}

/** The fields of an Uppy file the signer reads (`UppyFile`). */
export interface UppyFileLike {
  id?: string;
  name?: string;
  type?: string;
  size?: number | null;
  /** The File or Blob (its SHA-256 is sent for small single PUTs). */
  data?: unknown;
  meta?: Record<string, unknown>;
}

/** The part of an Uppy instance the signer uses when given one. */
export interface UppyLike {
  on(event: "upload-success" | "upload-error" | "file-removed", handler: (file: any, ...rest: any[]) => void): unknown;
  getFile?(id: string): unknown;
  log?(message: string, level?: string): unknown;
}

export interface UppySignerOptions extends ClientOptions {
  /** The profile whose rules apply, unless the file's meta has `profile` (`default`). */
  profile?: string;
  /** The asset's metadata: by default the file's string, number and boolean meta fields
   * but `name`, `type`, `size` and `profile`. */
  metadata?: Record<string, string> | ((file: UppyFileLike) => Record<string, string> | undefined);
  /** Single PUTs up to this size send their SHA-256, when crypto.subtle exists (8 MiB). */
  checksumMaxSize?: number;
  /** Part URLs asked for per call (100). */
  presignBatch?: number;
  /** The Uppy instance: single PUTs are then completed on `upload-success` (the asset at
   * once, instead of by the broker's confirmer), and released on `upload-error` and
   * `file-removed` (their reserved quota at once, instead of at expiry). */
  uppy?: UppyLike;
  /** Called with each asset the signer completes (multipart; single PUTs when `uppy` is given),
   * and the Uppy file when it is known. */
  onAsset?: (asset: Asset, file: UppyFileLike | undefined) => void;
}

/** Options for `@uppy/aws-s3` 6.x: `uppy.use(AwsS3, createUppySigner({ baseUrl, getToken, uppy }))`. */
export interface UppySigner {
  signRequest: (request: UppySignableRequest) => Promise<UppySignedRequest>;
  /** Remembers the file's size, type and meta under the key it returns (the requests carry none). */
  generateObjectKey: (file: UppyFileLike) => string;
  /** max(5 MiB, size / 10,000): the part size the broker plans and signs each part URL for. */
  getChunkSize: (file: { size: number }) => number;
}

/** signRequest and generateObjectKey for `@uppy/aws-s3` 6.x, through the broker with the user's token. */
export function createUppySigner(options: UppySignerOptions): UppySigner;
