import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { makeFsStorage } from './fs.ts';
import type { ObjectStorage, LinkSigner } from '../core/ports/storage.ts';

export interface StorageDependencies {
  /** Signs the links of filesystem storage, which darkroom serves itself under `/files`. */
  signer: LinkSigner;
  /** darkroom's public base URL, read when a filesystem link is made (it is known only once listening). */
  baseUrl: () => string;
}

/** The storage adapter that `config.storage` names; the AWS SDK is imported only for S3. */
export async function makeStorage(config: Config, { signer, baseUrl }: StorageDependencies): Promise<ObjectStorage> {
  if (config.storage === 'fs') return makeFsStorage({ root: join(config.dataDir, 'objects'), signer, baseUrl });
  const { endpoint, publicEndpoint, region, bucket, accessKeyId, secretAccessKey, forcePathStyle, createBucket } = config.s3;
  // loadConfig refuses STORAGE=s3 without a bucket; a hand-built Config can still lack one.
  if (!bucket) throw new Error('STORAGE=s3 needs S3_BUCKET');
  const { makeS3Storage } = await import('./s3.ts');
  return makeS3Storage({
    endpoint,
    region,
    bucket,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    forcePathStyle,
    createBucket,
    publicEndpoint,
  });
}
