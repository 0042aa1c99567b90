import sharp from 'sharp';

/** A PNG of one colour. */
export const solidPng = (r: number, g: number, b: number, width = 128, height = 128) =>
  sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).png().toBuffer();

/** A 128×128 mask, white (repaint) on the left half and black (keep) on the right. */
export async function leftHalfWhiteMask(): Promise<Buffer> {
  return sharp({ create: { width: 128, height: 128, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([{ input: await solidPng(255, 255, 255, 64, 128), left: 0, top: 0 }])
    .png()
    .toBuffer();
}

/** The RGB of one pixel of an image. */
export async function pixelOf(image: Buffer, x: number, y: number): Promise<(number | undefined)[]> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * 3;
  return [data[at], data[at + 1], data[at + 2]];
}

/** The RGB of one pixel of the image a link serves. */
export const pixelAt = async (url: string, x: number, y: number) => pixelOf(Buffer.from(await (await fetch(url)).arrayBuffer()), x, y);
