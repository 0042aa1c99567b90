import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLinkSigner, resolveSigningSecret } from '../src/storage/signing.ts';
import { makeDataDir, startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

interface ImageBody {
  url: string;
  thumbnailUrl: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
}

interface Fetched {
  status: number;
  headers: Headers;
  bytes: Buffer;
  // Problem bodies are JSON; each assertion narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

async function get(url: string): Promise<Fetched> {
  const response = await fetch(url, { redirect: 'manual' });
  const bytes = Buffer.from(await response.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, bytes, json };
}

/** A GET whose path goes on the wire exactly as written: fetch would resolve `..` and `%2e%2e` first. */
function rawGet(baseUrl: string, path: string): Promise<{ status: number; contentType: string | undefined; body: string }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: hostname, port, path, method: 'GET' }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, contentType: response.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

function expectLinkProblem(response: Fetched, code: 'link_invalid' | 'link_expired'): void {
  expect(response.status).toBe(403);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
  expect(response.json).toMatchObject({ type: `/problems/${code}`, title: 'Forbidden', status: 403, code });
  expect(response.json.detail).toBe(code === 'link_expired' ? 'This link has expired; ask the API for a new one' : 'This link is not valid');
}

/** The parts of a signed link. */
function partsOf(link: string): { origin: string; path: string; expires: string; signature: string } {
  const url = new URL(link);
  return { origin: url.origin, path: url.pathname, expires: url.searchParams.get('expires') ?? '', signature: url.searchParams.get('signature') ?? '' };
}

const linkTo = (origin: string, path: string, expires: string, signature: string) => `${origin}${path}?expires=${expires}&signature=${signature}`;

/** Changes one character of a base64url signature. */
const flip = (signature: string, at: number) => signature.slice(0, at) + (signature[at] === 'A' ? 'B' : 'A') + signature.slice(at + 1);

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function succeededJob(darkroom: TestDarkroom, body: Record<string, unknown>): Promise<{ id: string; images: ImageBody[] }> {
  const created = await darkroom.api('POST', '/api/v1/jobs', body);
  expect(created.status).toBe(202);
  const job = await darkroom.waitForJob(created.body.id);
  expect(job.status).toBe('succeeded');
  return { id: created.body.id, images: job.images as ImageBody[] };
}

describe('makeLinkSigner', () => {
  const secret = 's'.repeat(40);
  const signer = makeLinkSigner(secret);
  const key = 'jobs/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/0-original.png';
  const expires = 1_900_000_000;
  const signature = signer.sign(key, expires);

  it('signs deterministically with a 256-bit base64url MAC', () => {
    expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signer.sign(key, expires)).toBe(signature);
    expect(makeLinkSigner(secret).sign(key, expires)).toBe(signature);
    expect(signer.sign(key, expires + 1)).not.toBe(signature);
    expect(signer.sign(`${key}x`, expires)).not.toBe(signature);
  });

  it('is valid until the expiry second and expired from it on', () => {
    expect(signer.verify(key, String(expires), signature, 0)).toBe('valid');
    expect(signer.verify(key, String(expires), signature, expires * 1000 - 1)).toBe('valid');
    expect(signer.verify(key, String(expires), signature, expires * 1000)).toBe('expired');
    expect(signer.verify(key, String(expires), signature, expires * 1000 + 86_400_000)).toBe('expired');
  });

  it('refuses a changed key, expiry or signature, even once expired (a forgery is never called merely expired)', () => {
    for (const now of [0, (expires + 10) * 1000]) {
      expect(signer.verify(key.replace('0-original', '1-original'), String(expires), signature, now)).toBe('invalid');
      expect(signer.verify(key.replace('original.png', 'thumbnail.webp'), String(expires), signature, now)).toBe('invalid');
      expect(signer.verify(key, String(expires + 1), signature, now)).toBe('invalid');
      expect(signer.verify(key, String(expires - 1), signature, now)).toBe('invalid');
      expect(signer.verify(key, String(expires), flip(signature, 0), now)).toBe('invalid');
      expect(signer.verify(key, String(expires), flip(signature, 42), now)).toBe('invalid');
      expect(signer.verify(key, String(expires), signature.slice(0, 42), now)).toBe('invalid');
      expect(signer.verify(key, String(expires), `${signature}A`, now)).toBe('invalid');
      expect(makeLinkSigner('t'.repeat(40)).verify(key, String(expires), signature, now)).toBe('invalid');
    }
  });

  it('refuses missing and malformed parts', () => {
    expect(signer.verify(key, undefined, signature, 0)).toBe('invalid');
    expect(signer.verify(key, String(expires), undefined, 0)).toBe('invalid');
    expect(signer.verify(key, undefined, undefined, 0)).toBe('invalid');
    expect(signer.verify(key, '', signature, 0)).toBe('invalid');
    expect(signer.verify(key, String(expires), '', 0)).toBe('invalid');
    // Correctly MACed expiries that are not plain digits: only the format check can refuse them.
    const macOf = (expiry: string) => createHmac('sha256', secret).update(`${key}\n${expiry}`).digest('base64url');
    expect(macOf(String(expires))).toBe(signature);
    for (const odd of [`${expires}.0`, ` ${expires}`, `+${expires}`, '1.9e9', '-1', '1234567890123', `0x${expires.toString(16)}`]) {
      expect(signer.verify(key, odd, macOf(odd), 0), odd).toBe('invalid');
    }
  });

  it('keeps a generated secret in DATA_DIR/signing.key and prefers a configured one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'darkroom-signing-'));
    try {
      const configured = 'c'.repeat(40);
      expect(resolveSigningSecret(configured, dir)).toBe(configured);
      expect(existsSync(join(dir, 'signing.key'))).toBe(false);

      const generated = resolveSigningSecret(undefined, dir);
      expect(generated).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(readFileSync(join(dir, 'signing.key'), 'utf8')).toBe(generated);
      expect(statSync(join(dir, 'signing.key')).mode & 0o777).toBe(0o600);
      expect(resolveSigningSecret(undefined, dir)).toBe(generated);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * One darkroom (a fresh PGlite database is the slow part of a start), restarted half-way on the same
 * DATA_DIR with a 1-second link TTL: the links handed out before the restart must keep working, and
 * those handed out after it must expire. vitest runs the blocks of a file in order.
 */
describe('signed links served by darkroom', () => {
  const dataDir = makeDataDir();
  let dr: TestDarkroom;
  let restarted: TestDarkroom | undefined;
  let first: { id: string; images: ImageBody[] };
  let second: { id: string; images: ImageBody[] };

  beforeAll(async () => {
    dr = await startDarkroom({}, { dataDir });
    [first, second] = await Promise.all([
      succeededJob(dr, { prompt: 'a quiet harbour', width: 320, height: 256, numImages: 2, seed: 3 }),
      succeededJob(dr, { prompt: 'a busy market', width: 192, height: 320, seed: 4 }),
    ]);
  });
  afterAll(async () => {
    await dr?.close();
    await restarted?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves an original as the PNG the job describes', async () => {
    const image = first.images[1]!;
    const response = await get(image.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('cache-control')).toMatch(/^private, max-age=\d+, immutable$/);
    expect(Number(response.headers.get('content-length'))).toBe(image.bytes);
    expect(response.bytes.length).toBe(image.bytes);
    expect(sha256(response.bytes)).toBe(image.sha256);
    const meta = await sharp(response.bytes).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 320, 256]);
  });

  it('serves a thumbnail as a 128×128 WebP', async () => {
    for (const image of [first.images[0]!, second.images[0]!]) {
      const response = await get(image.thumbnailUrl);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/webp');
      const meta = await sharp(response.bytes).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['webp', 128, 128]);
    }
  });

  it('refuses a tampered signature', async () => {
    const { origin, path, expires, signature } = partsOf(first.images[0]!.url);
    for (const forged of [flip(signature, 0), flip(signature, 20), signature.slice(0, -1), `${signature}A`, signature.toLowerCase(), 'x']) {
      expectLinkProblem(await get(linkTo(origin, path, expires, forged)), 'link_invalid');
    }
  });

  it("refuses another object's key under this signature", async () => {
    const mine = partsOf(first.images[0]!.url);
    const others = [second.images[0]!.url, first.images[1]!.url, first.images[0]!.thumbnailUrl].map((link) => partsOf(link).path);
    expect(new Set([mine.path, ...others]).size).toBe(4);
    for (const path of others) {
      expectLinkProblem(await get(linkTo(mine.origin, path, mine.expires, mine.signature)), 'link_invalid');
    }
    // And the untampered link still works, so the refusals above are about the key.
    expect((await get(first.images[0]!.url)).status).toBe(200);
  });

  it('refuses a tampered expiry', async () => {
    const { origin, path, expires, signature } = partsOf(first.images[0]!.url);
    for (const changed of [String(Number(expires) + 1), String(Number(expires) + 86_400), String(Number(expires) - 1), `0${expires}`, '9999999999']) {
      expectLinkProblem(await get(linkTo(origin, path, changed, signature)), 'link_invalid');
    }
  });

  it('refuses a link without its signature or expiry', async () => {
    const { origin, path, expires, signature } = partsOf(first.images[0]!.url);
    expectLinkProblem(await get(`${origin}${path}?expires=${expires}`), 'link_invalid');
    expectLinkProblem(await get(`${origin}${path}?expires=${expires}&signature=`), 'link_invalid');
    expectLinkProblem(await get(`${origin}${path}?signature=${signature}`), 'link_invalid');
    expectLinkProblem(await get(`${origin}${path}`), 'link_invalid');
  });

  it('answers 404 for a correctly signed key that holds nothing', async () => {
    const signer = makeLinkSigner(readFileSync(join(dr.dataDir, 'signing.key'), 'utf8').trim());
    const expires = Math.floor(Date.now() / 1000) + 600;
    const key = `jobs/${first.id}/7-original.png`;
    const response = await get(linkTo(dr.url, `/files/${key}`, String(expires), signer.sign(key, expires)));
    expect(response.status).toBe(404);
    expect(response.json).toMatchObject({ status: 404, code: 'not_found', title: 'Not Found' });
  });

  it('never serves a file outside storage, whatever the path and even with a valid signature', async () => {
    const secret = readFileSync(join(dr.dataDir, 'signing.key'), 'utf8').trim();
    const signer = makeLinkSigner(secret);
    const expires = Math.floor(Date.now() / 1000) + 600;
    const signed = (wirePath: string, key: string) => `${wirePath}?expires=${expires}&signature=${signer.sign(key, expires)}`;
    const { expires: realExpires, signature: realSignature } = partsOf(first.images[0]!.url);

    const attempts = [
      '/files/../../etc/passwd',
      '/files/%2e%2e/%2e%2e/etc/passwd',
      '/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/files/..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/files/%252e%252e/%252e%252e/etc/passwd',
      `/files/jobs/${first.id}/../../../signing.key?expires=${realExpires}&signature=${realSignature}`,
      signed('/files/..%2fsigning.key', '../signing.key'),
      signed('/files/%2e%2e/signing.key', '../signing.key'),
      signed('/files/%2e%2e%2fsigning.key', '../signing.key'),
      signed(`/files/jobs/${first.id}/..%2f..%2f..%2fsigning.key`, `jobs/${first.id}/../../../signing.key`),
      signed('/files/%2fetc%2fpasswd', '/etc/passwd'),
      signed('/files//etc/passwd', '/etc/passwd'),
      signed('/files/.%2fjobs', './jobs'),
      signed('/files/jobs', 'jobs'),
    ];
    for (const path of attempts) {
      const response = await rawGet(dr.url, path);
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(response.status, path).toBeLessThan(500);
      expect(response.contentType, path).toMatch(/^application\/problem\+json\b/);
      expect(response.body, path).not.toContain(secret);
      expect(response.body, path).not.toContain('root:');
    }
  });

  describe('after a restart on the same DATA_DIR (now with SIGNED_URL_TTL 1)', () => {
    let secret: string;
    beforeAll(async () => {
      secret = readFileSync(join(dataDir, 'signing.key'), 'utf8');
      await dr.close();
      restarted = await startDarkroom({ SIGNED_URL_TTL: '1' }, { dataDir });
    });

    it('keeps the signing key and still honours the links handed out before', async () => {
      const now = restarted!;
      expect(readFileSync(join(dataDir, 'signing.key'), 'utf8')).toBe(secret);
      // The port is new, so each old link is replayed against the new address with its path and query intact.
      const image = first.images[1]!;
      const old = partsOf(image.url);
      const replayed = await get(linkTo(now.url, old.path, old.expires, old.signature));
      expect(replayed.status).toBe(200);
      expect(replayed.headers.get('content-type')).toBe('image/png');
      expect(sha256(replayed.bytes)).toBe(image.sha256);

      const oldThumbnail = partsOf(image.thumbnailUrl);
      const thumbnail = await get(linkTo(now.url, oldThumbnail.path, oldThumbnail.expires, oldThumbnail.signature));
      expect(thumbnail.status).toBe(200);
      expect((await sharp(thumbnail.bytes).metadata()).format).toBe('webp');

      expectLinkProblem(await get(linkTo(now.url, old.path, old.expires, flip(old.signature, 5))), 'link_invalid');
    });

    it('refuses an expired link with 403 link_expired, and the API hands out a later one', async () => {
      const now = restarted!;
      expect(now.darkroom.config.signedUrlTtlSeconds).toBe(1);
      const job = await now.api('GET', `/api/v1/jobs/${second.id}`);
      const image = (job.body.images as ImageBody[])[0]!;
      const { expires } = partsOf(image.url);
      // Wait until the expiry second has begun (at most ~1 s with a 1 s TTL), plus a margin.
      const waitMs = Math.min(3_000, Number(expires) * 1000 + 200 - Date.now());
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, waitMs)));

      expectLinkProblem(await get(image.url), 'link_expired');
      expectLinkProblem(await get(image.thumbnailUrl), 'link_expired');

      const fresh = await now.api('GET', `/api/v1/jobs/${second.id}/images/0`);
      expect(fresh.status).toBe(200);
      expect(Number(partsOf(fresh.body.url).expires)).toBeGreaterThan(Number(expires));
      expect(partsOf(fresh.body.url).path).toBe(partsOf(image.url).path);
    });
  });
});
