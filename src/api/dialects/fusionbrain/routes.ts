import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyError, FastifyRequest } from 'fastify';
import type { JobService } from '../../../core/job-service.ts';
import { DialectError } from '../../http/errors.ts';
import { parseJsonBody } from '../../http/json.ts';
import { PIPELINE, presentFinished } from './present.ts';
import { toGenerationUuid, toJobId } from './ids.ts';
import { readRunParams } from './params.ts';
import { AvailabilitySchema, errorResponses, PipelineParams, PipelineSchema, PipelinesQuery, RunResponse, StatusParams, StatusResponse } from './schemas.ts';

export interface FusionBrainRoutesOptions {
  jobs: JobService;
}

const PART_BYTES = 64 * 1024;
const FORM_LIMITS = { fieldSize: PART_BYTES, fileSize: PART_BYTES, fields: 10, parts: 10 };

const tags = ['fusionbrain'];

interface Form {
  pipelineId?: string;
  /** The `params` part's bytes as sent, read as darkroom reads every JSON body (parseJsonBody). */
  params?: { bytes: Buffer; mimetype: string };
}

async function readForm(request: FastifyRequest): Promise<Form> {
  if (!request.isMultipart()) {
    throw new DialectError(415, 'Send the request as multipart/form-data with the parts pipeline_id and params');
  }
  const form: Form = {};
  try {
    // isPartAFile (at registration) makes `params` a file part whatever its client sent (a text
    // part from Python requests, a Blob from fetch FormData), so its bytes arrive unparsed with their
    // own content type; every other part is a field.
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname === 'params') form.params = { bytes: await part.toBuffer(), mimetype: part.mimetype };
        continue;
      }
      if (part.mimetype.startsWith('image/')) {
        throw new DialectError(400, `The ${part.fieldname} part is an image, but Fusion Brain generates from text only: send pipeline_id and params`);
      }
      if (part.valueTruncated) throw new DialectError(413, `The ${part.fieldname} part is larger than ${PART_BYTES} bytes`);
      if (part.fieldname === 'pipeline_id') form.pipelineId = String(part.value).trim();
    }
  } catch (error) {
    if (error instanceof DialectError) throw error;
    const { code, statusCode } = error as FastifyError;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new DialectError(413, `The params part is larger than ${PART_BYTES} bytes`);
    if (code === 'FST_INVALID_JSON_FIELD_ERROR') throw new DialectError(400, 'A part sent as application/json is not valid JSON');
    if (statusCode === 413) throw new DialectError(413, `The form has too many parts (at most ${FORM_LIMITS.parts})`);
    throw new DialectError(400, `The multipart body is malformed: ${error instanceof Error ? error.message : 'unreadable'}`);
  }
  return form;
}

/** The `params` part's value: JSON under the same rules as any JSON body (UTF-8, nesting). */
function paramsValue(bytes: Buffer): unknown {
  try {
    return parseJsonBody(bytes);
  } catch (error) {
    throw new DialectError(400, `params is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * The Fusion Brain API (api-key.fusionbrain.ai) under /key/api/v1: one TEXT2IMAGE pipeline, run as
 * darkroom jobs. A finished generation is answered once, then 404, as the real service does, and
 * each uuid is the job's id in version-4 form (ids.ts).
 */
export const fusionbrainRoutes: FastifyPluginAsyncTypebox<FusionBrainRoutesOptions> = async (app, options) => {
  const { jobs: service } = options;
  await app.register(multipart, { isPartAFile: (fieldName) => fieldName === 'params', limits: FORM_LIMITS });

  const knownPipeline = (id: string) => {
    if (id !== PIPELINE.id) throw new DialectError(404, `Pipeline ${id} not found`);
  };

  app.get(
    '/pipelines',
    {
      schema: {
        tags,
        summary: 'Fusion Brain: the pipelines (one TEXT2IMAGE pipeline)',
        querystring: PipelinesQuery,
        response: { 200: { type: 'array', items: PipelineSchema }, ...errorResponses(401) },
      },
    },
    async (request) => (request.query.type === undefined || request.query.type === PIPELINE.type ? [PIPELINE] : []),
  );

  app.get(
    '/pipeline/:id/availability',
    {
      schema: {
        tags,
        summary: 'Fusion Brain: whether a pipeline takes work',
        params: PipelineParams,
        response: { 200: AvailabilitySchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      knownPipeline(request.params.id);
      return { status: PIPELINE.status, pipeline_status: PIPELINE.status };
    },
  );

  // Read before the handler, so that Idempotency-Key (which needs the whole body) is settled before a job is made.
  const forms = new WeakMap<FastifyRequest, Form>();
  app.post(
    '/pipeline/run',
    {
      config: { idempotent: true, group: 'generate' },
      preValidation: async (request) => {
        forms.set(request, await readForm(request));
      },
      schema: {
        tags,
        summary: 'Fusion Brain: start a generation',
        description:
          'multipart/form-data with a text part `pipeline_id` and a part `params` whose own Content-Type is application/json: ' +
          '{type: "GENERATE", numImages: 1, width, height (multiples of 64 up to 1024), style?, negativePromptDecoder?, generateParams: {query}}.',
        consumes: ['multipart/form-data'],
        response: { 201: RunResponse, ...errorResponses(400, 401, 404, 413, 415) },
      },
    },
    async (request, reply) => {
      const form = forms.get(request) ?? {};
      if (form.pipelineId === undefined || form.pipelineId === '') throw new DialectError(400, 'The pipeline_id part is required');
      if (!form.params) throw new DialectError(400, 'The params part is required');
      if (!form.params.mimetype.startsWith('application/json')) {
        throw new DialectError(415, `The params part must have Content-Type: application/json (it has ${form.params.mimetype})`);
      }
      knownPipeline(form.pipelineId);
      const read = readRunParams(paramsValue(form.params.bytes));
      if ('problems' in read) throw new DialectError(400, `Invalid params: ${read.problems.join('; ')}`);
      const job = await service.for(request.caller).create(read.input, { dialect: 'fusionbrain', dialectData: { pipelineId: PIPELINE.id } });
      return reply.code(201).send({ uuid: toGenerationUuid(job.id), status: 'INITIAL', status_time: job.createdAt.getTime() });
    },
  );

  app.get(
    '/pipeline/status/:uuid',
    {
      schema: {
        tags,
        summary: 'Fusion Brain: a generation; a finished one is answered once, then 404',
        params: StatusParams,
        response: { 200: StatusResponse, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const jobs = service.for(request.caller);
      const { uuid } = request.params;
      const gone = () => new DialectError(404, `Generation ${uuid} not found (unknown, or its result was already read)`);
      const id = toJobId(uuid);
      const [job] = id ? await jobs.getMany([id]) : [];
      if (!job || job.dialect !== 'fusionbrain' || job.dialectData.resultReadAt !== undefined) throw gone();

      if (job.status === 'queued') return { uuid, status: 'INITIAL' as const };
      if (job.status === 'running') return { uuid, status: 'PROCESSING' as const };
      const answer = await presentFinished(uuid, job, (index) => jobs.readImage(job.id, index));
      // Claimed before answering, atomically: like the service, a result is handed out once, even to
      // two reads at the same instant, and one lost in transit is not handed out again.
      if (!(await jobs.claimDialectKey(job.id, 'resultReadAt', new Date().toISOString()))) throw gone();
      return answer;
    },
  );

};
