import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { JobService } from '../../../core/job-service.ts';
import { JobIdParams, problemResponses } from '../../../protocols/native/schemas.ts';
import { WebhookDeliveriesResponse } from './schemas.ts';
import { presentDelivery } from './present.ts';

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
