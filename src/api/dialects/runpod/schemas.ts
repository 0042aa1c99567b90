import { Type } from 'typebox';
import { WEBHOOK_URL_MAX_LENGTH } from '../../../core/request.ts';

/** RunPod's bounds on a policy's times: up to 7 days. */
const MAX_POLICY_MS = 7 * 24 * 3_600_000;

export const EndpointParams = Type.Object({
  endpointId: Type.String({ minLength: 1, maxLength: 128, description: 'Any name: endpoints are namespaces for jobs' }),
});

export const JobParams = Type.Object({
  endpointId: EndpointParams.properties.endpointId,
  id: Type.String({ minLength: 1, maxLength: 200, description: 'Job id, as /run answered it' }),
});

export const RunBody = Type.Object(
  {
    input: Type.Record(Type.String(), Type.Unknown(), {
      description: 'A worker-comfyui, worker-sdxl, A1111 or custom-worker input; the output comes back in the same worker’s shape',
    }),
    webhook: Type.Optional(
      Type.String({
        format: 'uri',
        maxLength: WEBHOOK_URL_MAX_LENGTH,
        description: 'http(s) URL POSTed the job’s /status body once it finishes (retried until it answers 2xx)',
      }),
    ),
    webhookV2: Type.Optional(Type.String({ description: 'Not supported: refused, so that no client waits for a call that never comes' })),
    policy: Type.Optional(
      Type.Object(
        {
          ttl: Type.Optional(Type.Integer({ minimum: 10_000, maximum: MAX_POLICY_MS, description: 'ms; becomes the job deadline (expired → TIMED_OUT)' })),
          executionTimeout: Type.Optional(Type.Integer({ minimum: 5_000, maximum: MAX_POLICY_MS, description: 'ms; accepted, not enforced' })),
          lowPriority: Type.Optional(Type.Boolean({ description: 'Runs after normal-priority jobs' })),
        },
        { additionalProperties: false },
      ),
    ),
    s3Config: Type.Optional(Type.Unknown({ description: 'Ignored: darkroom keeps the images in its own storage and links to them' })),
  },
  { additionalProperties: false },
);

export const WaitQuery = Type.Object({
  wait: Type.Optional(Type.Integer({ description: 'How long to wait for the job to finish, in ms; clamped to 1000–300000 (default 90000)' })),
});

const Status = Type.Enum(['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);

export const StatusResponse = Type.Object({
  id: Type.String(),
  status: Status,
  delayTime: Type.Optional(Type.Integer({ description: 'ms from created to started' })),
  executionTime: Type.Optional(Type.Integer({ description: 'ms from started to completed' })),
  output: Type.Optional(Type.Unknown({ description: 'In the shape of the worker the input was written for' })),
  error: Type.Optional(Type.String()),
});

export const StreamResponse = Type.Object({
  status: Status,
  stream: Type.Array(Type.Object({ output: Type.Unknown() })),
});

export const PurgeResponse = Type.Object({ removed: Type.Integer(), status: Type.Literal('completed') });

export const HealthResponse = Type.Object({
  jobs: Type.Object({
    completed: Type.Integer(),
    failed: Type.Integer(),
    inProgress: Type.Integer(),
    inQueue: Type.Integer(),
    retried: Type.Integer(),
  }),
  workers: Type.Object({
    idle: Type.Integer(),
    initializing: Type.Integer(),
    ready: Type.Integer(),
    running: Type.Integer(),
    throttled: Type.Integer(),
  }),
});

export const ErrorResponse = Type.Object({ error: Type.String() }, { description: 'RunPod-style error' });

export const errorResponses = (...statuses: number[]) => Object.fromEntries(statuses.map((status) => [status, ErrorResponse]));
