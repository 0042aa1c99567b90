import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { makeS3Storage } from '../src/storage/s3.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { startS3rver, type TestS3 } from './helpers/s3rver.ts';

describe('darkroom with STORAGE=s3, end to end against s3rver', () => {
  const bucket = 'darkroom-images';
  let s3: TestS3;
  let dr: TestDarkroom;
  let client: S3Client;
  beforeAll(async () => {
    s3 = await startS3rver();
    dr = await startDarkroom(s3.env(bucket));
    client = new S3Client({ endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: true });
  });
  afterAll(async () => {
    await dr?.close({ removeData: true });
    client?.destroy();
    await s3?.close();
  });

  it('stores the original and thumbnail under jobs/{jobId}/ and links to them in the bucket', async () => {
    const created = await dr.api('POST', '/api/v1/jobs', { prompt: 'a harbour at night', width: 640, height: 384, seed: 5 });
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    const job = await dr.waitForJob(id);
    expect(job.status).toBe('succeeded');
    const [image] = job.images as { url: string; thumbnailUrl: string }[];

    for (const link of [image!.url, image!.thumbnailUrl]) {
      const url = new URL(link);
      expect(url.origin).toBe(s3.endpoint);
      expect(url.pathname.startsWith(`/${bucket}/jobs/${id}/`)).toBe(true);
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    }

    const original = await fetch(image!.url);
    expect(original.status).toBe(200);
    expect(original.headers.get('content-type')).toBe('image/png');
    const originalMeta = await sharp(Buffer.from(await original.arrayBuffer())).metadata();
    expect([originalMeta.format, originalMeta.width, originalMeta.height]).toEqual(['png', 640, 384]);

    const thumbnail = await fetch(image!.thumbnailUrl);
    expect(thumbnail.status).toBe(200);
    expect(thumbnail.headers.get('content-type')).toBe('image/webp');
    const thumbnailMeta = await sharp(Buffer.from(await thumbnail.arrayBuffer())).metadata();
    expect([thumbnailMeta.format, thumbnailMeta.width, thumbnailMeta.height]).toEqual(['webp', 128, 128]);

    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `jobs/${id}/` }));
    expect((listed.Contents ?? []).map((object) => object.Key).sort()).toEqual([`jobs/${id}/0-original.png`, `jobs/${id}/0-thumbnail.webp`]);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `jobs/${id}/0-thumbnail.webp` }));
    expect(head.ContentType).toBe('image/webp');
  });

  it('signs links for S3_PUBLIC_ENDPOINT when clients reach the service at another address', async () => {
    const publicEndpoint = s3.endpoint.replace('127.0.0.1', 'localhost');
    const storage = makeS3Storage({
      endpoint: s3.endpoint,
      publicEndpoint,
      region: s3.region,
      bucket,
      credentials: s3.credentials,
      forcePathStyle: true,
      createBucket: true,
    });
    try {
      await storage.put('public/one.png', Buffer.from('not really a png'), 'image/png');
      const link = await storage.signedUrl('public/one.png', 60);
      expect(new URL(link.url).origin).toBe(publicEndpoint);
      const response = await fetch(link.url);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('not really a png');
    } finally {
      await storage.close();
    }
  });

  it('reports the bucket in its readiness check', async () => {
    const ready = await dr.api('GET', '/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.checks.storage).toBe('ok');
  });

  it('with S3_CREATE_BUCKET=false, reports a missing bucket as not ready and leaves it missing', async () => {
    const strict = await startDarkroom({ ...s3.env('not-created'), S3_CREATE_BUCKET: 'false' });
    try {
      const ready = await strict.api('GET', '/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.checks.storage).toBe('failed');
    } finally {
      await strict.close({ removeData: true });
    }
    const buckets = await fetch(s3.endpoint).then((response) => response.text());
    expect(buckets).not.toContain('not-created');
  });
});

describe('s3 storage adapter', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startS3rver();
  });
  afterAll(() => s3?.close());

  const storageFor = (bucket: string, options: { createBucket?: boolean; credentials?: TestS3['credentials'] } = {}) =>
    makeS3Storage({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket,
      credentials: options.credentials ?? s3.credentials,
      forcePathStyle: true,
      createBucket: options.createBucket ?? true,
    });

  it('deletes more than 1000 keys in batches of at most 1000, as S3 requires', async () => {
    const storage = storageFor('batches');
    try {
      await storage.put('batch/first.png', Buffer.from('first'), 'image/png');
      await storage.put('batch/last.png', Buffer.from('last'), 'image/png');
      const missing = Array.from({ length: 2498 }, (_, index) => `batch/missing-${index}.png`);
      const before = s3.requests.length;
      await storage.delete(['batch/first.png', ...missing, 'batch/last.png']);
      expect(s3.requests.slice(before).filter((request) => request.startsWith('POST /batches/?delete'))).toHaveLength(3);
      expect(await storage.get('batch/first.png')).toBeNull();
      expect(await storage.get('batch/last.png')).toBeNull();
    } finally {
      await storage.close();
    }
  });

  it('fails, rather than answering null, when the bucket itself is missing', async () => {
    const storage = storageFor('absent', { createBucket: false });
    try {
      await expect(storage.get('jobs/x/0-original.png')).rejects.toThrow('S3 GetObject jobs/x/0-original.png failed with NoSuchBucket (HTTP 404)');
    } finally {
      await storage.close();
    }
  });

  it('keeps the access key id and secret out of its errors, as a logger would print them', async () => {
    const credentials = { accessKeyId: 'AKIA-NOT-AN-ACCOUNT', secretAccessKey: 'very-secret-value' };
    const storage = storageFor('refused', { createBucket: false, credentials });
    try {
      // The SDK's own error for this answer carries the access key id as a property.
      const errors = [
        await storage.put('jobs/x/0-original.png', Buffer.from('x'), 'image/png').catch((caught: unknown) => caught),
        await storage.check().catch((caught: unknown) => caught),
      ];
      expect((errors[0] as Error).message).toBe('S3 PutObject jobs/x/0-original.png failed with InvalidAccessKeyId (HTTP 403): The AWS Access Key Id you provided does not exist in our records.');
      expect((errors[1] as Error).message).toBe('S3 HeadBucket refused failed (HTTP 403)');
      for (const error of errors) {
        const logged = JSON.stringify(pino.stdSerializers.err(error as Error));
        expect(logged).not.toContain(credentials.accessKeyId);
        expect(logged).not.toContain(credentials.secretAccessKey);
      }
    } finally {
      await storage.close();
    }
  });
});

describe('STORAGE=s3 configuration', () => {
  const problemsOf = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
  };

  it('needs a bucket, and an access key id and secret together or not at all', () => {
    expect(problemsOf({ STORAGE: 's3' })).toEqual(['STORAGE=s3 needs S3_BUCKET']);
    expect(problemsOf({ STORAGE: 's3', S3_BUCKET: 'images', S3_ACCESS_KEY_ID: 'id' })).toEqual([
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together',
    ]);
    expect(problemsOf({ STORAGE: 's3', S3_BUCKET: 'images', S3_SECRET_ACCESS_KEY: 'secret' })).toEqual([
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together',
    ]);
    expect(problemsOf({ STORAGE: 's3', S3_BUCKET: 'images' })).toEqual([]);
  });

  it('never repeats the secret in a problem', () => {
    const problems = problemsOf({ STORAGE: 's3', S3_SECRET_ACCESS_KEY: 'very-secret-value' });
    expect(problems.join('\n')).not.toContain('very-secret-value');
  });

  it('creates missing buckets unless S3_CREATE_BUCKET says otherwise', () => {
    expect(loadConfig({ STORAGE: 's3', S3_BUCKET: 'images' }).s3.createBucket).toBe(true);
    expect(loadConfig({ STORAGE: 's3', S3_BUCKET: 'images', S3_CREATE_BUCKET: 'false' }).s3.createBucket).toBe(false);
    expect(problemsOf({ STORAGE: 's3', S3_BUCKET: 'images', S3_CREATE_BUCKET: 'maybe' })).toEqual(['S3_CREATE_BUCKET="maybe" must be true or false']);
  });
});
