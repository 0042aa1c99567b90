import { createHash } from 'node:crypto';
import type { Sharp } from 'sharp';

/** mulberry32: a tiny seeded PRNG, enough to lay out shapes reproducibly. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hsl = (h: number, s: number, l: number) => `hsl(${Math.round(h)},${Math.round(s)}%,${Math.round(l)}%)`;

/**
 * Renders an abstract picture that depends only on (prompt, seed, width, height): the same four
 * always give the same PNG bytes, and different prompts give visibly different compositions
 * (palette, gradient, and a few dozen shapes).
 */
export async function renderMockImage(prompt: string, seed: number, width: number, height: number): Promise<Buffer> {
  // sharp (libvips) loads with the first image, not with the server.
  const { default: sharp } = await import('sharp');
  const digest = createHash('sha256').update(`${seed}\u0000${prompt}`).digest();
  const random = prng(digest.readUInt32LE(0));
  const hue = random() * 360;
  const shapes: string[] = [];
  const count = 18 + Math.floor(random() * 18);
  for (let i = 0; i < count; i += 1) {
    const fill = hsl(hue + (random() - 0.5) * 180, 40 + random() * 55, 25 + random() * 55);
    const opacity = (0.35 + random() * 0.55).toFixed(2);
    const x = random() * width;
    const y = random() * height;
    const size = (0.04 + random() * 0.3) * Math.min(width, height);
    if (random() < 0.55) {
      shapes.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${size.toFixed(1)}" fill="${fill}" fill-opacity="${opacity}"/>`);
    } else {
      const points = Array.from({ length: 3 + Math.floor(random() * 3) }, () => {
        const angle = random() * Math.PI * 2;
        return `${(x + Math.cos(angle) * size).toFixed(1)},${(y + Math.sin(angle) * size).toFixed(1)}`;
      }).join(' ');
      shapes.push(`<polygon points="${points}" fill="${fill}" fill-opacity="${opacity}"/>`);
    }
  }
  const angle = Math.floor(random() * 360);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<defs><linearGradient id="bg" gradientTransform="rotate(${angle} 0.5 0.5)">
<stop offset="0" stop-color="${hsl(hue, 70, 18)}"/><stop offset="1" stop-color="${hsl(hue + 140, 65, 62)}"/>
</linearGradient></defs>
<rect width="100%" height="100%" fill="url(#bg)"/>${shapes.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

async function rawRgb(image: Sharp): Promise<Buffer> {
  return image.removeAlpha().toColourspace('srgb').raw().toBuffer();
}

/**
 * The mock's image-to-image: its own picture laid over the init image (resized to the output's
 * size). With a mask, each pixel takes the init image where the mask is black and the own picture
 * where it is white (grey mixes them); without one, the two mix by `strength` everywhere, so 0 gives
 * the init image back and 1 ignores it.
 */
export async function blendWithInit(own: Buffer, init: Buffer, mask: Buffer | undefined, strength: number, width: number, height: number): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const [ownPixels, initPixels, maskPixels] = await Promise.all([
    rawRgb(sharp(own)),
    rawRgb(sharp(init).resize(width, height, { fit: 'fill' })),
    mask ? sharp(mask).resize(width, height, { fit: 'fill' }).removeAlpha().toColourspace('b-w').raw().toBuffer() : undefined,
  ]);
  const out = Buffer.alloc(width * height * 3);
  for (let pixel = 0; pixel < width * height; pixel += 1) {
    const weight = maskPixels ? (maskPixels[pixel] ?? 0) / 255 : strength;
    for (let channel = 0; channel < 3; channel += 1) {
      const at = pixel * 3 + channel;
      const from = initPixels[at] ?? 0;
      out[at] = Math.round(from + ((ownPixels[at] ?? 0) - from) * weight);
    }
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
