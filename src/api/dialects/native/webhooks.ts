import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { JobService } from '../../../core/job-service.ts';
import { type DeliveryLogEntry, WEBHOOK_EVENT_TYPES } from '../../../core/ports/webhooks.ts';
import { JobIdParams, problemResponses } from '../../../protocols/native/schemas.ts';

const DateTime = Type.String({ format: 'date-time' });
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

export function presentDelivery(entry: DeliveryLogEntry): Static<typeof WebhookDeliverySchema> {
  return {
    id: entry.id,
    url: entry.url,
    event: entry.event,
    format: entry.format,
    status: entry.status,
    createdAt: entry.createdAt.toISOString(),
    deliveredAt: entry.deliveredAt?.toISOString() ?? null,
    nextAttemptAt: entry.status === 'pending' ? (entry.nextAttemptAt?.toISOString() ?? null) : null,
    attempts: entry.attemptLog.map((attempt) => ({
      attempt: attempt.attempt,
      at: attempt.startedAt.toISOString(),
      durationMs: attempt.durationMs,
      statusCode: attempt.statusCode,
      error: attempt.error,
      retryAt: attempt.retryAt?.toISOString() ?? null,
    })),
  };
}

/** The delivery log of a job's webhooks, under /api/v1. */
export const webhookRoutes: FastifyPluginAsyncTypebox<{ jobs: JobService }> = async (app, { jobs }) => {
  app.get(
    '/jobs/:id/webhooks',
    {
      schema: {
        tags: ['jobs'],
        summary: "A job's webhook deliveries and every attempt of each (its batch's completion included)",
        params: JobIdParams,
        response: { 200: WebhookDeliveriesResponse, ...problemResponses(400, 404) },
      },
    },
    async (request) => ({ items: (await jobs.for(request.caller).webhookDeliveries(request.params.id)).map(presentDelivery) }),
  );
};
