import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { ApiKey, KeyStore } from './ports/stores.ts';

export interface KeyCacheOptions {
  /** How long a verified key is trusted: the longest a key revoked by another process still works here. */
  ttlMs: number;
  maxEntries: number;
}

/**
 * The key store with verified keys kept in memory, so a request with a key costs no query. A key
 * revoked in this process is refused at once; one revoked by another process once its entry is
 * older than `ttlMs`. Unknown secrets are not remembered: a key just created by another process
 * works at once, and a caller trying secrets cannot fill the cache.
 */
export function makeCachedKeyStore(store: KeyStore, options: KeyCacheOptions): KeyStore {
  // Keyed by the secret's digest, so no secret is held in memory longer than its request.
  const verified = new LRUCache<string, ApiKey>({ max: options.maxEntries, ttl: options.ttlMs, updateAgeOnGet: false });
  const digest = (secret: string) => createHash('sha256').update(secret).digest('base64');
  // A verification that overlapped a revocation may have read the key before it: it is not kept.
  let revocations = 0;

  return {
    ...store,
    async verify(secret) {
      const id = digest(secret);
      const known = verified.get(id);
      if (known) return known;
      const before = revocations;
      const key = await store.verify(secret);
      if (key && revocations === before) verified.set(id, key);
      return key;
    },
    async revoke(id) {
      revocations += 1;
      const revoked = await store.revoke(id).finally(() => (revocations += 1));
      for (const [digestOf, key] of verified.entries()) if (key.id === id) verified.delete(digestOf);
      return revoked;
    },
  };
}
