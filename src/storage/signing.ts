import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { LinkSigner } from '../core/ports/storage.ts';
import { persistentSecret } from '../config/secret-file.ts';

/** HMAC-SHA256 over the key and the expiry. */
export function makeLinkSigner(secret: string): LinkSigner {
  const mac = (key: string, expires: string) =>
    createHmac('sha256', secret).update(`${key}\n${expires}`).digest('base64url');
  return {
    sign: (key, expiresAtSeconds) => mac(key, String(expiresAtSeconds)),
    verify(key, expires, signature, nowMs = Date.now()) {
      if (!expires || !signature || !/^\d{1,12}$/.test(expires)) return 'invalid';
      const expected = Buffer.from(mac(key, expires));
      const given = Buffer.from(signature);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid';
      return Number(expires) * 1000 <= nowMs ? 'expired' : 'valid';
    },
  };
}

/**
 * When a link minted now for ttlSeconds expires: the start of a time step, so every link to one object minted within
 * that step is the same URL (browsers and proxies cache the image across polls) and lives between ttl - step and ttl.
 */
export function linkExpiry(nowMs: number, ttlSeconds: number): number {
  const step = Math.max(1, Math.min(60, Math.floor(ttlSeconds / 10)));
  return Math.floor((nowMs / 1000 + ttlSeconds) / step) * step;
}

/** The configured secret, or one generated on first start and kept in DATA_DIR so links survive restarts. */
export function resolveSigningSecret(configured: string | undefined, dataDir: string): string {
  return configured ?? persistentSecret(dataDir, 'signing.key', () => randomBytes(32).toString('base64url'));
}
