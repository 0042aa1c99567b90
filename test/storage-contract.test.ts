import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeFsStorage } from '../src/storage/fs.ts';
import type { ObjectStorage } from '../src/core/ports/storage.ts';
import { makeS3Storage } from '../src/storage/s3.ts';
import { makeLinkSigner } from '../src/storage/signing.ts';
import { startDarkroom } from './helpers/darkroom.ts';
import { startS3rver } from './helpers/s3rver.ts';

interface StorageFixture {
  storage: ObjectStorage;
  /** The query parameters of a link that carry its signature and its expiry, to tamper with. */
  signatureParameter: string;
  expiryParameter: string;
  /** The same kind of storage, pointed at a store it cannot use: its check() must fail. */
  unusable: ObjectStorage;
  close(): Promise<void>;
}

/** Filesystem links only work through darkroom's /files route, so this case runs a real darkroom. */
async function startFs(): Promise<StorageFixture> {
  const darkroom = await startDarkroom({ STORAGE: 'fs' });
  const notADirectory = join(darkroom.dataDir, 'not-a-directory');
  writeFileSync(notADirectory, '');
  return {
    storage: darkroom.darkroom.storage,
    signatureParameter: 'signature',
    expiryParameter: 'expires',
    unusable: makeFsStorage({ root: join(notADirectory, 'objects'), signer: makeLinkSigner('s'.repeat(32)), baseUrl: () => darkroom.url }),
    close: () => darkroom.close({ removeData: true }),
  };
}

async function startS3(): Promise<StorageFixture> {
  const s3 = await startS3rver();
  const options = { endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true };
  const storage = makeS3Storage({ ...options, bucket: 'contract', createBucket: true });
  const unusable = makeS3Storage({ ...options, bucket: 'never-created', createBucket: false });
  return {
    storage,
    signatureParameter: 'X-Amz-Signature',
    expiryParameter: 'X-Amz-Expires',
    unusable,
    async close() {
      await storage.close();
      await unusable.close();
      await s3.close();
    },
  };
}

const read = async (storage: ObjectStorage, key: string) => {
  const object = await storage.get(key);
  if (!object) return null;
  return { bytes: await buffer(object.body), size: object.size, contentType: object.contentType };
};

const download = async (url: string) => {
  const response = await fetch(url);
  return { status: response.status, contentType: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()) };
};

/** Replaces one query parameter's value in the link as sent, leaving every other byte alone. */
const withParameter = (url: string, name: string, replace: (value: string) => string) => {
  const match = new RegExp(`([?&]${name}=)([^&]*)`).exec(url);
  if (!match) throw new Error(`The link has no ${name} parameter: ${url}`);
  return url.replace(match[0], `${match[1]}${replace(match[2]!)}`);
};

describe.each([
  { name: 'fs', start: startFs },
  { name: 's3', start: startS3 },
])('storage contract: $name', ({ start }) => {
  let fixture: StorageFixture;
  let storage: ObjectStorage;
  beforeAll(async () => {
    fixture = await start();
    storage = fixture.storage;
  });
  afterAll(() => fixture?.close());

  it('check() passes', async () => {
    await expect(storage.check()).resolves.toBeUndefined();
  });

  it('returns what was put: the same bytes, size and content type', async () => {
    const bytes = randomBytes(2048);
    await storage.put('contract/round-trip.png', bytes, 'image/png');
    expect(await read(storage, 'contract/round-trip.png')).toEqual({ bytes, size: bytes.length, contentType: 'image/png' });
  });

  it('replaces an object that is put again', async () => {
    await storage.put('contract/replaced.webp', randomBytes(4000), 'image/webp');
    const second = randomBytes(1000);
    await storage.put('contract/replaced.webp', second, 'image/webp');
    expect(await read(storage, 'contract/replaced.webp')).toEqual({ bytes: second, size: 1000, contentType: 'image/webp' });
  });

  it('answers null for a missing key, and for a key that could leave the store', async () => {
    expect(await storage.get('contract/never-written.png')).toBeNull();
    expect(await storage.get('contract/../escape.png')).toBeNull();
  });

  it('refuses to write a key that could leave the store', async () => {
    await expect(storage.put('../escape.png', randomBytes(10), 'image/png')).rejects.toThrow('Invalid storage key');
    await expect(storage.put('contract//double.png', randomBytes(10), 'image/png')).rejects.toThrow('Invalid storage key');
  });

  it('deletes, and deleting missing keys (or none) is fine', async () => {
    await storage.put('contract/delete/a.png', randomBytes(10), 'image/png');
    await storage.put('contract/delete/b.png', randomBytes(10), 'image/png');
    await storage.delete(['contract/delete/a.png', 'contract/delete/missing.png']);
    expect(await storage.get('contract/delete/a.png')).toBeNull();
    expect(await storage.get('contract/delete/b.png')).not.toBeNull();
    await storage.delete(['contract/delete/a.png']);
    await storage.delete([]);
    expect(await storage.get('contract/delete/b.png')).not.toBeNull();
  });

  it('gives an absolute link that a plain fetch downloads, with the right type, until it expires', async () => {
    const bytes = randomBytes(3000);
    await storage.put('contract/linked.webp', bytes, 'image/webp');
    const before = Date.now();
    const link = await storage.signedUrl('contract/linked.webp', 600);
    expect(new URL(link.url).protocol).toBe('http:');
    // Links are minted per 60-second step of a 600-second life, so a link lives between 540 and 600 seconds.
    expect(link.expiresAt.getTime()).toBeGreaterThan(before + 538_000);
    expect(link.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(await download(link.url)).toEqual({ status: 200, contentType: 'image/webp', bytes });
  });

  it('hands out the same link for one object within a step, so clients can cache the image', async () => {
    await storage.put('contract/stable.png', randomBytes(10), 'image/png');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.UTC(2026, 0, 1, 12, 0, 5));
      const first = await storage.signedUrl('contract/stable.png', 600);
      vi.setSystemTime(Date.UTC(2026, 0, 1, 12, 0, 50));
      const second = await storage.signedUrl('contract/stable.png', 600);
      vi.setSystemTime(Date.UTC(2026, 0, 1, 12, 1, 5));
      const next = await storage.signedUrl('contract/stable.png', 600);
      expect(second).toEqual(first);
      expect(first.expiresAt.toISOString()).toBe('2026-01-01T12:10:00.000Z');
      expect(next.url).not.toBe(first.url);
      expect(next.expiresAt.toISOString()).toBe('2026-01-01T12:11:00.000Z');
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a tampered link with 403: another key, a longer life, a changed signature', async () => {
    await storage.put('contract/tamper/mine.png', randomBytes(10), 'image/png');
    await storage.put('contract/tamper/theirs.png', randomBytes(10), 'image/png');
    const { url } = await storage.signedUrl('contract/tamper/mine.png', 60);
    expect((await download(url)).status).toBe(200);

    const otherKey = new URL(url);
    otherKey.pathname = otherKey.pathname.replace('mine.png', 'theirs.png');
    const longerLife = withParameter(url, fixture.expiryParameter, (value) => `${value}0`);
    const otherSignature = withParameter(url, fixture.signatureParameter, (value) => `${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`);
    for (const tampered of [otherKey.toString(), longerLife, otherSignature]) {
      expect(tampered).not.toBe(url);
      expect((await download(tampered)).status).toBe(403);
    }
  });

  it('refuses an expired link with 403', async () => {
    await storage.put('contract/expiring.png', randomBytes(10), 'image/png');
    const { url } = await storage.signedUrl('contract/expiring.png', 1);
    await new Promise((resolve) => setTimeout(resolve, 2200));
    expect((await download(url)).status).toBe(403);
  });

  it('works with keys in nested folders', async () => {
    const key = 'jobs/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/deep/er/0-original.png';
    const bytes = randomBytes(500);
    await storage.put(key, bytes, 'image/png');
    expect((await read(storage, key))?.bytes).toEqual(bytes);
    expect((await download((await storage.signedUrl(key, 60)).url)).bytes).toEqual(bytes);
    await storage.delete([key]);
    expect(await storage.get(key)).toBeNull();
  });

  it('round-trips a 5 MB object, through get and through a link', async () => {
    const bytes = randomBytes(5 * 1024 * 1024);
    await storage.put('contract/large.png', bytes, 'image/png');
    const stored = await read(storage, 'contract/large.png');
    expect(stored?.size).toBe(bytes.length);
    expect(stored?.bytes.equals(bytes)).toBe(true);
    const downloaded = await download((await storage.signedUrl('contract/large.png', 60)).url);
    expect(downloaded.bytes.equals(bytes)).toBe(true);
  });

  it('fails check() when the store cannot be used (s3: a missing bucket it may not create)', async () => {
    await expect(fixture.unusable.check()).rejects.toThrow();
  });
});
