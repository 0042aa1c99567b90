import { randomUUID } from 'node:crypto';
import { createReadStream, constants } from 'node:fs';
import { access, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type LinkSigner, isSafeKey, TYPE_BY_EXTENSION, type ObjectStorage } from '../core/ports/storage.ts';
import { linkExpiry } from './signing.ts';

export interface FsStorageOptions {
  root: string;
  signer: LinkSigner;
  /** The public base URL of the darkroom that serves `/files/…`; read at signing time. */
  baseUrl: () => string;
}

/** Objects as files under `root`; links point at darkroom's own `/files/{key}` route. */
export function makeFsStorage(options: FsStorageOptions): ObjectStorage {
  const pathOf = (key: string) => {
    if (!isSafeKey(key)) throw new Error(`Invalid storage key: ${key}`);
    return join(options.root, key);
  };

  return {
    kind: 'fs',

    async put(key, body) {
      const path = pathOf(key);
      await mkdir(dirname(path), { recursive: true });
      // Write then rename, so a reader (or a crash) never sees half a file.
      const temporary = `${path}.${randomUUID()}.tmp`;
      await writeFile(temporary, body);
      await rename(temporary, path);
    },

    async get(key) {
      if (!isSafeKey(key)) return null;
      const path = pathOf(key);
      try {
        const info = await stat(path);
        if (!info.isFile()) return null;
        const extension = key.slice(key.lastIndexOf('.') + 1);
        return {
          body: createReadStream(path),
          size: info.size,
          contentType: TYPE_BY_EXTENSION[extension] ?? 'application/octet-stream',
        };
      } catch {
        return null;
      }
    },

    async delete(keys) {
      await Promise.all(keys.map((key) => rm(pathOf(key), { force: true })));
    },

    async signedUrl(key, ttlSeconds) {
      const expires = linkExpiry(Date.now(), ttlSeconds);
      const signature = options.signer.sign(key, expires);
      const url = `${options.baseUrl()}/files/${key}?expires=${expires}&signature=${signature}`;
      return { url, expiresAt: new Date(expires * 1000) };
    },

    async check() {
      await mkdir(options.root, { recursive: true });
      await access(options.root, constants.W_OK | constants.R_OK);
    },

    async close() {},
  };
}
