import type { ImageView, JobView, ScopedJobs } from '../../../core/job-service.ts';
import type { TokenUsage } from '../../../core/pricing.ts';
import { limitsOf, sizeText, type ImageObject, type ImagesResponse, type ImageStreamEvent, type ImageUsage, type OutputFormat, type ResponseFormat } from '../../../protocols/openai/index.ts';

/** What the dialect keeps with each of its jobs to answer in OpenAI's shape. */
export interface OpenAIJobData {
  operation: 'generations' | 'edits' | 'variations';
  /** The model the client named (the job carries it only when a provider claims it). */
  model: string;
  responseFormat?: ResponseFormat;
  outputFormat?: OutputFormat;
  outputCompression?: number;
  quality?: string;
  background?: string;
  user?: string;
}

const FORMAT_OF_TYPE: Record<string, OutputFormat> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/webp': 'webp' };
const TYPE_OF_FORMAT: Record<OutputFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

export const openaiData = (job: JobView): OpenAIJobData => job.dialectData as unknown as OpenAIJobData;

/** The answer's format when the client asked for none: GPT image models answer base64, the others links. */
export function responseFormatOf(data: OpenAIJobData): ResponseFormat {
  return data.responseFormat ?? (limitsOf(data.model)?.base64Only ? 'b64_json' : 'url');
}

/** The format the client gets an image of `contentType` in, and whether that takes a conversion. */
function plan(contentType: string, data: OpenAIJobData): { format: OutputFormat | undefined; convert: boolean } {
  const storedFormat = FORMAT_OF_TYPE[contentType];
  const format = data.outputFormat ?? storedFormat;
  const recompress = data.outputCompression !== undefined && format !== 'png' && data.outputCompression !== 100;
  return { format, convert: format !== undefined && (format !== storedFormat || recompress) };
}

/**
 * One stored image as the client asked for it: the original, or a conversion of it with sharp when
 * `output_format` names another format or `output_compression` another quality. The stored original
 * is never changed.
 */
async function render(jobs: ScopedJobs, job: JobView, image: ImageView, data: OpenAIJobData): Promise<{ bytes: Buffer; format: OutputFormat | undefined }> {
  const { format, convert } = plan(image.contentType, data);
  const stored = await jobs.readImage(job.id, image.index);
  if (!convert || format === undefined) return { bytes: stored.bytes, format };
  const quality = Math.max(1, data.outputCompression ?? 100);
  // sharp (libvips) loads with the first image, not with the server.
  const { default: sharp } = await import('sharp');
  const decoded = sharp(stored.bytes);
  const converted = format === 'png' ? decoded.png() : format === 'jpeg' ? decoded.flatten({ background: '#ffffff' }).jpeg({ quality }) : decoded.webp({ quality });
  return { bytes: await converted.toBuffer(), format };
}

async function imageObject(jobs: ScopedJobs, job: JobView, image: ImageView, data: OpenAIJobData, responseFormat: ResponseFormat): Promise<{ image: ImageObject; format?: OutputFormat }> {
  const { format, convert } = plan(image.contentType, data);
  if (responseFormat === 'url' && !convert) return { image: { url: (await jobs.imageLink(job.id, image.index, 'original')).url }, format };
  const rendered = await render(jobs, job, image, data);
  if (responseFormat === 'b64_json') return { image: { b64_json: rendered.bytes.toString('base64') }, format };
  // A conversion is not stored, so no signed link serves it: it travels as a data URL, which browsers and fetch() read like any link.
  return { image: { url: `data:${TYPE_OF_FORMAT[format ?? 'png']};base64,${rendered.bytes.toString('base64')}` }, format };
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** The tokens the job's provider reported, in OpenAI's words. */
function usageOf(usage: TokenUsage): ImageUsage {
  const image = usage.inputImageTokens ?? 0;
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { image_tokens: image, text_tokens: usage.inputTextTokens ?? usage.inputTokens - image },
    output_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

/** A succeeded job as OpenAI's ImagesResponse. */
export async function presentImages(jobs: ScopedJobs, job: JobView): Promise<ImagesResponse & { data: ImageObject[] }> {
  const data = openaiData(job);
  const format = responseFormatOf(data);
  const images = await Promise.all(job.images.map((image) => imageObject(jobs, job, image, data, format)));
  const first = job.images[0];
  const outputFormat = images[0]?.format;
  return {
    created: seconds(job.createdAt),
    data: images.map((item) => item.image),
    ...(data.background === 'transparent' || data.background === 'opaque' ? { background: data.background } : {}),
    ...(outputFormat ? { output_format: outputFormat } : {}),
    ...(data.quality === 'low' || data.quality === 'medium' || data.quality === 'high' ? { quality: data.quality } : {}),
    ...(first ? { size: sizeText(first.width, first.height) } : {}),
    // Only when the job's provider counted tokens, as OpenAI answers only for its GPT image models.
    ...(job.usage ? { usage: usageOf(job.usage) } : {}),
  };
}

/** A succeeded job's images as the `completed` events of a stream, one per image. */
export async function presentCompletedEvents(jobs: ScopedJobs, job: JobView, type: ImageStreamEvent['type']): Promise<ImageStreamEvent[]> {
  const data = openaiData(job);
  return Promise.all(
    job.images.map(async (image): Promise<ImageStreamEvent> => {
      const rendered = await render(jobs, job, image, data);
      return {
        type,
        b64_json: rendered.bytes.toString('base64'),
        background: data.background === 'transparent' || data.background === 'opaque' ? data.background : 'auto',
        created_at: seconds(job.completedAt ?? job.createdAt),
        output_format: rendered.format ?? 'png',
        quality: data.quality === 'low' || data.quality === 'medium' || data.quality === 'high' ? data.quality : 'auto',
        size: sizeText(image.width, image.height),
        // A completed event always carries usage: zero when the job's provider counted no tokens.
        usage: job.usage ? usageOf(job.usage) : { input_tokens: 0, input_tokens_details: { image_tokens: 0, text_tokens: 0 }, output_tokens: 0, total_tokens: 0 },
      };
    }),
  );
}
