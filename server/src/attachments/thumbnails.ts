import sharp, { type Metadata } from 'sharp';
import { DomainError } from '../errors.ts';

export interface ImageInfo {
  width: number;
  height: number;
  /** The thumbnail (WebP, at most `size` pixels a side). */
  thumb: Buffer;
  /** A tiny blurred WebP as a data: URL, small enough to travel in the message event. */
  preview: string;
}

/**
 * Reads an image's dimensions and makes its thumbnail and inline preview. sharp decodes on
 * libuv's thread pool, so the event loop only waits. The pixel count is read from the header
 * first and an image over `maxPixels` is refused before anything is decoded (a decompression
 * bomb: a few KB that would inflate to gigabytes); `limitInputPixels` holds the same line inside
 * the decoder.
 */
export function describeImage(bytes: Buffer, opts: { maxPixels: number; size?: number }): Promise<ImageInfo> {
  return oneAtATime(() => describe(bytes, opts));
}

/**
 * One image decoded at a time in this process: a burst of photo uploads waits here rather than
 * taking every libuv thread (file reads and WebCrypto share them) and a full decode's memory each.
 */
let queue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  // The caller gets the error; the queue only waits for the turn to end.
  queue = run.catch(() => undefined);
  return run;
}

async function describe(bytes: Buffer, opts: { maxPixels: number; size?: number }): Promise<ImageInfo> {
  const size = opts.size ?? 320;
  const open = () => sharp(bytes, { limitInputPixels: opts.maxPixels, failOn: 'error', animated: false });
  let meta: Metadata;
  try {
    meta = await open().metadata();
  } catch (err) {
    throw refusal(err as Error, opts.maxPixels);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new DomainError('BAD_REQUEST', 'not a readable image: no dimensions');
  if (width * height > opts.maxPixels) {
    throw new DomainError('PAYLOAD_TOO_LARGE', `image of ${width}×${height} pixels is over the limit of ${opts.maxPixels} pixels`);
  }
  try {
    // The full image is decoded once, for the thumbnail; the preview is made from the thumbnail.
    const thumb = await open()
      .autoOrient()
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 75 })
      .toBuffer();
    const tiny = await sharp(thumb).resize(24, 24, { fit: 'inside' }).blur(1).webp({ quality: 40 }).toBuffer();
    return { width, height, thumb, preview: `data:image/webp;base64,${tiny.toString('base64')}` };
  } catch (err) {
    throw refusal(err as Error, opts.maxPixels);
  }
}

/** sharp's refusal as the client's: the pixel limit is a size refusal, anything else an unreadable image. */
function refusal(err: Error, maxPixels: number): DomainError {
  if (/pixel limit/i.test(err.message)) return new DomainError('PAYLOAD_TOO_LARGE', `image over the limit of ${maxPixels} pixels`);
  return new DomainError('BAD_REQUEST', `not a readable image: ${err.message}`);
}
