import { Jimp } from 'jimp';
import sharp from 'sharp';
import { renderMockImage } from '../src/providers/mock/image.ts';
import { prepareImage } from '../src/storage/thumbnail.ts';
import { THUMBNAIL_SIZE } from '../src/core/ports/storage.ts';
import { mean, progress, type Row } from './lib.ts';

export interface ThumbnailOptions {
  iterations: number;
  warmup: number;
}

/** Mean milliseconds per call of `work`, after `warmup` discarded calls, one call at a time. */
async function time(name: string, options: ThumbnailOptions, work: () => Promise<Buffer>): Promise<{ ms: number; bytes: number }> {
  progress(`thumbnail: ${name}: ${options.warmup} warm-up + ${options.iterations} iterations`);
  for (let i = 0; i < options.warmup; i += 1) await work();
  const durations: number[] = [];
  let bytes = 0;
  for (let i = 0; i < options.iterations; i += 1) {
    const started = performance.now();
    const output = await work();
    durations.push(performance.now() - started);
    bytes = output.length;
  }
  return { ms: mean(durations), bytes };
}

/** Item 4: a 128×128 cover thumbnail of a 512×512 mock PNG, with sharp (darkroom's code) and with Jimp. */
export async function benchThumbnail(options: ThumbnailOptions): Promise<{ rows: Row[]; notes: string[] }> {
  const png = await renderMockImage('a lighthouse at dusk, oil on canvas', 42, 512, 512);
  const size = { w: THUMBNAIL_SIZE, h: THUMBNAIL_SIZE };

  const sharpWebp = () => prepareImage(png).then((prepared) => prepared.thumbnail);
  const sharpPng = () => sharp(png).resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'cover' }).png().toBuffer();
  const jimpPng = async () => {
    const image = await Jimp.read(png);
    image.cover(size);
    return image.getBuffer('image/png');
  };

  // Each must really make a 128×128 image, or the comparison means nothing.
  for (const [name, work] of [['sharp WebP', sharpWebp], ['sharp PNG', sharpPng], ['jimp PNG', jimpPng]] as const) {
    const { width, height } = await sharp(await work()).metadata();
    if (width !== THUMBNAIL_SIZE || height !== THUMBNAIL_SIZE) throw new Error(`${name} made a ${width}×${height} thumbnail`);
  }

  const sharpWebpTime = await time('sharp prepareImage (WebP)', options, sharpWebp);
  const sharpPngTime = await time('sharp cover → PNG', options, sharpPng);
  const jimpPngTime = await time('jimp cover → PNG', options, jimpPng);

  const rows: Row[] = [
    { metric: 'Thumbnail, sharp prepareImage (WebP q80)', value: sharpWebpTime.ms, unit: 'ms/img', reference: { value: jimpPngTime.ms, label: 'jimp → PNG' } },
    { metric: '  thumbnail, sharp cover → PNG', value: sharpPngTime.ms, unit: 'ms/img', reference: { value: jimpPngTime.ms, label: 'jimp → PNG' } },
  ];
  const notes = [
    `Thumbnail: mean of ${options.iterations} sequential iterations each (after ${options.warmup} warm-up) on one 512×512 PNG from renderMockImage (${png.length.toLocaleString('en-US')} bytes); ` +
      `decode + 128×128 cover + encode. Jimp has no WebP encoder, so Jimp encodes PNG (${jimpPngTime.bytes.toLocaleString('en-US')} bytes) while prepareImage encodes WebP q80 ` +
      `(${sharpWebpTime.bytes.toLocaleString('en-US')} bytes) and also reads metadata; the "sharp cover → PNG" row is the like-for-like comparison (${sharpPngTime.bytes.toLocaleString('en-US')} bytes). Ratio = sharp / jimp.`,
  ];
  return { rows, notes };
}
