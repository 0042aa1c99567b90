import type { JobView } from '../../../core/job-service.ts';
import type { HistoryEntry, ImageRef, QueueItem, Workflow } from '../../../protocols/comfyui/index.ts';

/** What the dialect keeps with each job it creates (Job.dialectData). */
export interface ComfyJobData {
  promptId: string;
  clientId?: string;
  number: number;
  samplerNode: string;
  outputs: { id: string; classType: string; prefix: string }[];
  extraData: Record<string, unknown>;
}

export const dataOf = (job: JobView) => job.dialectData as unknown as ComfyJobData;

const EXTENSION: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/** An output file's name: the SaveImage prefix, then the job and the image's index, which /view reads back. */
export const outputName = (prefix: string, jobId: string, index: number, contentType: string) =>
  `${prefix}_${jobId}_${String(index).padStart(5, '0')}_.${EXTENSION[contentType] ?? 'png'}`;

const OUTPUT_NAME = /_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_(\d{5})_\.(?:png|jpg|webp)$/;

/** The job and image index an output file name stands for. */
export function parseOutputName(filename: string): { jobId: string; index: number } | undefined {
  const match = OUTPUT_NAME.exec(filename);
  return match ? { jobId: match[1] as string, index: Number(match[2]) } : undefined;
}

/** A SaveImage's filename_prefix as a plain name (no folders: darkroom has none). */
export const prefixOf = (value: unknown) => (typeof value === 'string' ? value.replace(/^.*\//, '').replace(/[^\w-]/g, '').slice(0, 50) : '') || 'ComfyUI';

/** The images of each output node of a finished job: SaveImage's are outputs, PreviewImage's temporary. */
export function outputsOf(job: JobView): Record<string, { images: ImageRef[] }> {
  const data = dataOf(job);
  return Object.fromEntries(
    data.outputs.map((output) => [
      output.id,
      {
        images: job.images.map((image) => ({
          filename: outputName(output.prefix, job.id, image.index, image.contentType),
          subfolder: '',
          type: output.classType === 'PreviewImage' ? ('temp' as const) : ('output' as const),
        })),
      },
    ]),
  );
}

const millis = (at: Date | null) => (at ?? new Date()).getTime();

export function queueItem(job: JobView): QueueItem {
  const data = dataOf(job);
  return [data.number, data.promptId, (job.request.workflow ?? {}) as Workflow, { ...data.extraData, ...(data.clientId ? { client_id: data.clientId } : {}) }, data.outputs.map((output) => output.id)];
}

/** A finished job as a `/history` entry. */
export function historyEntry(job: JobView): HistoryEntry {
  const data = dataOf(job);
  const base = { prompt_id: data.promptId };
  const messages: [string, Record<string, unknown>][] = [['execution_start', { ...base, timestamp: millis(job.startedAt) }]];
  const succeeded = job.status === 'succeeded';
  if (succeeded) messages.push(['execution_success', { ...base, timestamp: millis(job.completedAt) }]);
  else if (job.status === 'cancelled') messages.push(['execution_interrupted', { ...base, node_id: data.samplerNode, node_type: 'KSampler', executed: [], timestamp: millis(job.completedAt) }]);
  else messages.push(['execution_error', { ...executionError(job), timestamp: millis(job.completedAt) }]);
  return {
    prompt: queueItem(job),
    outputs: succeeded ? outputsOf(job) : {},
    status: { status_str: succeeded ? 'success' : 'error', completed: succeeded, messages },
    meta: Object.fromEntries(data.outputs.map((output) => [output.id, { node_id: output.id, display_node: output.id, parent_node: null, real_node_id: output.id }])),
  };
}

/** The `execution_error` of a failed job: darkroom's reason as the exception. */
export function executionError(job: JobView): Record<string, unknown> {
  const data = dataOf(job);
  return {
    prompt_id: data.promptId,
    node_id: data.samplerNode,
    node_type: 'KSampler',
    executed: [],
    exception_message: job.status === 'expired' ? 'The job did not finish before its deadline' : (job.error?.message ?? 'The generation failed'),
    exception_type: job.error?.code ?? 'RuntimeError',
    traceback: [],
    current_inputs: {},
    current_outputs: {},
  };
}
