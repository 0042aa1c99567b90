import type { Readable } from 'node:stream';

/**
 * The storage port: where originals and thumbnails live. Keys are relative paths such as
 * `jobs/{jobId}/0-original.png`; writing a key again replaces it (so a retried store never doubles).
 */
export interface StoredObject {
  body: Readable;
  size: number;
  contentType: string;
}

export interface SignedLink {
  url: string;
  expiresAt: Date;
}

export interface ObjectStorage {
  readonly kind: string;
  put(key: string, body: Buffer, contentType: string): Promise<void>;
  /** null when the key does not exist. */
  get(key: string): Promise<StoredObject | null>;
  delete(keys: string[]): Promise<void>;
  /** An absolute link that lets anyone holding it read the object until it expires. */
  signedUrl(key: string, ttlSeconds: number): Promise<SignedLink>;
  check(): Promise<void>;
  close(): Promise<void>;
}

/** Thumbnails are WebP squares of this many pixels a side. */
export const THUMBNAIL_SIZE = 128;

export interface PreparedImage {
  width: number;
  height: number;
  thumbnail: Buffer;
}

/**
 * Reads an original's real dimensions and makes its THUMBNAIL_SIZE² WebP thumbnail (cover: cropped,
 * never stretched); throws for bytes that are not a readable image.
 */
export type ImagePreparer = (original: Buffer) => Promise<PreparedImage>;

export const EXTENSION_BY_TYPE: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'avif',
};

export const TYPE_BY_EXTENSION: Record<string, string> = Object.fromEntries(
  Object.entries(EXTENSION_BY_TYPE).map(([type, extension]) => [extension, type]),
);

export function imageKeys(jobId: string, index: number, contentType: string) {
  const extension = EXTENSION_BY_TYPE[contentType] ?? 'bin';
  return {
    originalKey: `jobs/${jobId}/${index}-original.${extension}`,
    thumbnailKey: `jobs/${jobId}/${index}-thumbnail.webp`,
  };
}

/** Where input image `index` of a job is kept: with the job's outputs, so the two live and go together. */
export function inputKey(jobId: string, index: number, contentType: string): string {
  return `jobs/${jobId}/input-${index}.${EXTENSION_BY_TYPE[contentType] ?? 'bin'}`;
}

/** The whole object, or null when the key does not exist. */
export async function readObject(storage: Pick<ObjectStorage, 'get'>, key: string): Promise<{ bytes: Buffer; contentType: string } | null> {
  const object = await storage.get(key);
  if (!object) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), contentType: object.contentType };
}

/** Keys are built by darkroom, but links arrive from outside: refuse anything that could leave the root. */
export function isSafeKey(key: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._/-]{0,500}$/.test(key) && !key.split('/').some((part) => part === '..' || part === '.' || part === '');
}

/**
 * HMAC-signed, expiring links for objects that darkroom serves itself (filesystem storage).
 * The signature covers the key and the expiry, so neither can be changed without detection.
 */
export interface LinkSigner {
  sign(key: string, expiresAtSeconds: number): string;
  verify(key: string, expires: string | undefined, signature: string | undefined, nowMs?: number): 'valid' | 'expired' | 'invalid';
}
