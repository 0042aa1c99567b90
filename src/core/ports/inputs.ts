/**
 * What the core needs to take input images: a store of uploads, a reader of image headers, and a
 * fetcher of URLs that refuses addresses inside darkroom's own network.
 */

export interface Upload {
  id: string;
  /** The key's owner; null for the admin and guests of an open darkroom. */
  owner: string | null;
  /** Where its bytes are (content-addressed: the same bytes are one object, shared with the jobs that use them). */
  key: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface UploadStore {
  insert(upload: Upload): Promise<void>;
  get(id: string): Promise<Upload | null>;
  /** Uploads whose time is up, oldest first. */
  listExpired(now: Date, limit: number): Promise<Upload[]>;
  delete(ids: string[]): Promise<void>;
  /** Whether an upload not expired at `now`, or any job, still refers to the stored object `key`. */
  isKeyInUse(key: string, now?: Date): Promise<boolean>;
}

/** What an image's header says. */
export interface ImageFacts {
  contentType: 'image/png' | 'image/jpeg' | 'image/webp';
  width: number;
  height: number;
}

/** Reads the type (from the bytes, never from a name or header) and the dimensions; null for anything but a PNG, JPEG or WebP it can read. */
export type ImageInspector = (bytes: Buffer) => Promise<ImageFacts | null>;

/** A URL darkroom refused to fetch, or a fetch that failed; `message` says why in words a client can act on. */
export class InputFetchError extends Error {}

export interface InputFetcher {
  /** Why darkroom may not fetch `url` (not http(s), a private address, …), or null when it may. */
  refusal(url: string): Promise<string | null>;
  /** The body of a GET of `url`, at most `maxBytes`; throws InputFetchError. */
  fetch(url: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<Buffer>;
}
