import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { LRUCache } from 'lru-cache';
import { isSafeKey, TYPE_BY_EXTENSION, type ObjectStorage } from '../core/ports/storage.ts';
import { linkExpiry } from './signing.ts';

export interface S3StorageOptions {
  /** An S3-compatible service (MinIO, R2, …); unset means AWS S3 in `region`. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  /** Unset means the SDK's default chain (AWS_* variables, shared profiles, instance and task roles). */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`; MinIO needs it unless it has domain routing. */
  forcePathStyle: boolean;
  /** Create the bucket when it is missing (before the first write, or on check()). */
  createBucket: boolean;
  /**
   * Where clients reach the service, when that differs from `endpoint` (MinIO at `http://minio:9000`
   * inside a compose network, `https://files.example.com` outside): links are signed for this host.
   */
  publicEndpoint?: string | undefined;
}

/** S3 allows at most this many keys in one DeleteObjects request. */
const DELETE_BATCH_SIZE = 1000;

/**
 * Objects in an S3 bucket; links are SigV4-presigned GETs that point at the bucket itself, so
 * downloads never pass through darkroom.
 */
export function makeS3Storage(options: S3StorageOptions): ObjectStorage {
  const { bucket } = options;
  const clientFor = (endpoint: string | undefined) =>
    new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(endpoint ? { endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // The SDK's default flexible checksums are headers and trailers that several S3-compatible
      // services refuse; sending them only where S3 requires one (DeleteObjects) keeps one behaviour
      // for AWS, MinIO and R2, and keeps `x-amz-checksum-mode` out of the links.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  const client = clientFor(options.endpoint);
  // A SigV4 signature covers the host, so links for another address must be signed for that address.
  const linkClient = options.publicEndpoint ? clientFor(options.publicEndpoint) : client;
  // A presigned URL is the same for a whole time step and costs a SigV4 derivation: made once per step.
  const links = new LRUCache<string, { url: string; expiresAt: Date }>({ max: 10_000 });

  const requireSafeKey = (key: string) => {
    if (!isSafeKey(key)) throw new Error(`Invalid storage key: ${key}`);
  };

  // Ensured lazily rather than when darkroom is composed, so that an S3 service that starts after
  // darkroom (a compose file) needs no restart; a failed attempt is forgotten so the next one retries.
  let bucketReady: Promise<void> | undefined;
  const ensureBucket = (): Promise<void> => {
    if (!options.createBucket) return Promise.resolve();
    bucketReady ??= createBucketIfMissing().catch((error: unknown) => {
      bucketReady = undefined;
      throw error;
    });
    return bucketReady;
  };

  async function createBucketIfMissing(): Promise<void> {
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
      return;
    } catch (error) {
      if (statusOf(error) !== 404) throw storageError('HeadBucket', bucket, error);
    }
    // Outside us-east-1, AWS wants the region restated; other services pick their own region and
    // some refuse an unknown location constraint, so it is sent to AWS only.
    const location = !options.endpoint && options.region !== 'us-east-1' ? (options.region as BucketLocationConstraint) : undefined;
    try {
      await client.send(
        new CreateBucketCommand({ Bucket: bucket, ...(location ? { CreateBucketConfiguration: { LocationConstraint: location } } : {}) }),
      );
    } catch (error) {
      // Another darkroom process (an API and a worker starting together) may have won the race.
      if (error instanceof S3ServiceException && error.name === 'BucketAlreadyOwnedByYou') return;
      throw storageError('CreateBucket', bucket, error);
    }
  }

  return {
    kind: 's3',

    async put(key, body, contentType) {
      requireSafeKey(key);
      await ensureBucket();
      await attempt('PutObject', key, () => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType })));
    },

    async get(key) {
      if (!isSafeKey(key)) return null;
      try {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        if (!(response.Body instanceof Readable)) throw new Error('S3 returned no readable body');
        return {
          body: response.Body,
          size: response.ContentLength ?? 0,
          contentType: response.ContentType ?? 'application/octet-stream',
        };
      } catch (error) {
        // A missing bucket is a misconfiguration, not a missing object.
        if (error instanceof S3ServiceException && error.name !== 'NoSuchBucket' && statusOf(error) === 404) return null;
        throw storageError('GetObject', key, error);
      }
    },

    async delete(keys) {
      keys.forEach(requireSafeKey);
      for (let start = 0; start < keys.length; start += DELETE_BATCH_SIZE) {
        const batch = keys.slice(start, start + DELETE_BATCH_SIZE);
        // S3 reports a missing key as deleted, so only real failures come back in Errors.
        const { Errors: failures = [] } = await attempt('DeleteObjects', `${batch.length} keys`, () =>
          client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((key) => ({ Key: key })), Quiet: true } })),
        );
        const [first] = failures;
        if (first) throw new Error(`S3 DeleteObjects failed for ${failures.length} keys, first ${first.Key}: ${first.Code ?? 'no error code'}`);
      }
    },

    async signedUrl(key, ttlSeconds) {
      requireSafeKey(key);
      const expires = linkExpiry(Date.now(), ttlSeconds);
      const memo = `${expires}|${ttlSeconds}|${key}`;
      const known = links.get(memo);
      if (known) return known;
      // Signing at the step's start keeps the URL the same for the whole step (SigV4 dates have whole seconds).
      const signingDate = new Date((expires - ttlSeconds) * 1000);
      const contentType = TYPE_BY_EXTENSION[key.slice(key.lastIndexOf('.') + 1)];
      const command = new GetObjectCommand({ Bucket: bucket, Key: key, ...(contentType ? { ResponseContentType: contentType } : {}) });
      const url = await getSignedUrl(linkClient, command, { expiresIn: ttlSeconds, signingDate });
      const link = { url, expiresAt: new Date(expires * 1000) };
      links.set(memo, link);
      return link;
    },

    async check() {
      await ensureBucket();
      await attempt('HeadBucket', bucket, () => client.send(new HeadBucketCommand({ Bucket: bucket })));
    },

    async close() {
      client.destroy();
      if (linkClient !== client) linkClient.destroy();
    },
  };
}

function statusOf(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

async function attempt<T>(operation: string, target: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw storageError(operation, target, error);
  }
}

/**
 * The SDK's errors carry the request's access key id and string-to-sign as properties, which a log
 * serializer would print; this keeps only what an operator needs.
 */
function storageError(operation: string, target: string, error: unknown): Error {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    // Answers without a body (HEAD, some proxies) leave the SDK only placeholder names.
    const code = error.name === 'Unknown' ? '' : ` with ${error.name}`;
    const detail = error.message && error.message !== error.name && error.message !== 'UnknownError' ? `: ${error.message}` : '';
    return new Error(`S3 ${operation} ${target} failed${code}${status ? ` (HTTP ${status})` : ''}${detail}`);
  }
  return new Error(`S3 ${operation} ${target} failed: ${error instanceof Error ? error.message : String(error)}`);
}
