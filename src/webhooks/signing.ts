import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { persistentSecret } from '../config/secret-file.ts';

export const WEBHOOK_SECRET_FILE = 'webhook.key';

export interface WebhookSigner {
  /** The Standard Webhooks headers for one attempt of message `id` carrying `body`. */
  headers(id: string, body: string, at?: Date): Record<string, string>;
}

/** Signs as the Standard Webhooks specification says (docs/webhooks.md): HMAC-SHA256 of "{id}.{timestamp}.{body}" under the `whsec_` secret. */
export function makeWebhookSigner(secret: string): WebhookSigner {
  const webhook = new Webhook(secret);
  return {
    headers(id, body, at = new Date()) {
      return {
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': webhook.sign(id, at, body),
      };
    },
  };
}

/**
 * WEBHOOK_SECRET, or one generated on first start and kept in DATA_DIR (as the link-signing key
 * is), so signatures stay verifiable across restarts. Processes that do not share a DATA_DIR must
 * share WEBHOOK_SECRET instead.
 */
export function resolveWebhookSecret(configured: string | undefined, dataDir: string): string {
  return configured ?? persistentSecret(dataDir, WEBHOOK_SECRET_FILE, () => `whsec_${randomBytes(32).toString('base64')}`);
}
