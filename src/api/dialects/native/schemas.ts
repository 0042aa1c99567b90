import { Type } from 'typebox';
import { KEY_SCOPES } from '../../../core/ports/stores.ts';
import { WEBHOOK_EVENT_TYPES } from '../../../core/ports/webhooks.ts';
import { MAX_BATCH_SIZE } from '../../../core/job-service.ts';

/**
 * The native API's schemas whose enumerations are the core's own (key scopes, webhook events); the
 * job schemas are the native protocol's (src/protocols/native).
 */

const DateTime = Type.String({ format: 'date-time' });

const BudgetSchema = Type.Object(
  {
    amount: Type.Number({ exclusiveMinimum: 0, maximum: 1e9, description: 'In PRICE_CURRENCY' }),
    period: Type.Enum(['day', 'month'], { description: 'UTC days or months' }),
  },
  { additionalProperties: false, description: "The most the key's jobs may be estimated to cost per period; a job past it is refused with 402" },
);

export const NewKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', description: 'What the key is for, shown in lists' }),
    scopes: Type.Optional(Type.Array(Type.Enum([...KEY_SCOPES]), { maxItems: KEY_SCOPES.length, description: '`admin`: keys, queue-wide stats, the admin UI' })),
    maxActiveJobs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Queued plus running jobs at once; default MAX_ACTIVE_JOBS_PER_KEY' })),
    maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_BATCH_SIZE, description: 'Jobs per batch; default MAX_BATCH_SIZE, never above it' })),
    budget: Type.Optional(BudgetSchema),
  },
  { additionalProperties: false },
);

export const KeySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
  scopes: Type.Array(Type.String()),
  maxActiveJobs: Type.Union([Type.Integer(), Type.Null()]),
  maxBatchSize: Type.Union([Type.Integer(), Type.Null()]),
  budget: Type.Union([BudgetSchema, Type.Null()]),
  createdAt: DateTime,
  revokedAt: Type.Union([DateTime, Type.Null()]),
});

export const CreatedKeySchema = Type.Intersect([
  KeySchema,
  Type.Object({ key: Type.String({ description: 'The secret: shown this once, never again' }) }),
]);

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const WebhookAttemptSchema = Type.Object({
  attempt: Type.Integer({ description: '1 for the first' }),
  at: DateTime,
  durationMs: Type.Integer(),
  statusCode: Nullable(Type.Integer({ description: 'The receiver’s answer; null when none came (timeout, refused connection, refused address)' })),
  error: Nullable(Type.String()),
  retryAt: Nullable(Type.String({ format: 'date-time', description: 'When the next attempt was scheduled; null when this one ended the delivery' })),
});

export const WebhookDeliverySchema = Type.Object({
  id: Type.String({ description: 'The `webhook-id` header: the same on every attempt' }),
  url: Type.String(),
  event: Type.Enum(WEBHOOK_EVENT_TYPES),
  format: Type.String({ description: 'darkroom’s envelope, or the status body of the dialect the job came in through' }),
  status: Type.Enum(['pending', 'delivered', 'failed']),
  createdAt: DateTime,
  deliveredAt: Nullable(DateTime),
  nextAttemptAt: Nullable(Type.String({ format: 'date-time', description: 'While pending: when it is next attempted' })),
  attempts: Type.Array(WebhookAttemptSchema),
});

export const WebhookDeliveriesResponse = Type.Object({ items: Type.Array(WebhookDeliverySchema) });

