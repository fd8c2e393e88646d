import { fileTypeFromBuffer } from 'file-type';

/** Bytes file-type needs to recognise any format it knows. */
export const SNIFF_BYTES = 4100;

/** Raster images a browser may show inline: none of them can carry script. */
const INLINE_IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

/** Raster images the hub makes thumbnails of (the decoder sees only these). */
export const THUMBNAIL_TYPES = INLINE_IMAGES;

const ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'application/x-zip-compressed': 'application/zip',
};

/** A content type as stored: lower case, no parameters, aliases folded. */
export function normaliseType(t: string): string {
  const base = t.split(';')[0]!.trim().toLowerCase();
  return ALIASES[base] ?? base;
}

/**
 * Checks a declared content type against the file's first bytes (magic numbers). Where the
 * bytes are a format file-type knows, the declared type must be that format; where they are
 * not (text, CSV, SVG, HTML), the declared type must not claim one it would have recognised.
 * Returns the refusal's reason, or null when the declaration holds.
 */
export async function typeMismatch(declared: string, head: Uint8Array): Promise<string | null> {
  const found = await fileTypeFromBuffer(head);
  if (found) {
    const mime = normaliseType(found.mime);
    if (mime === declared) return null;
    // Container formats file-type reports by their container (a .docx is a zip).
    if (mime === 'application/zip' && /^application\/(vnd\.openxmlformats|vnd\.oasis|epub|java-archive)/.test(declared)) return null;
    return `the file is ${mime}, not ${declared}`;
  }
  if (INLINE_IMAGES.has(declared) || ['application/pdf', 'application/zip', 'video/mp4', 'audio/mpeg'].includes(declared)) {
    return `the file's bytes are not ${declared}`;
  }
  return null;
}

/**
 * How a file is served: safe raster images inline with their own type; everything else as a
 * download, typed as opaque bytes, so an uploaded HTML or SVG page never renders (nor runs
 * script) where it is served from.
 */
export function servedAs(contentType: string, name: string, variant: 'file' | 'thumb') {
  if (variant === 'thumb') return { contentType: 'image/webp', disposition: `inline; filename="thumbnail.webp"` };
  const inline = INLINE_IMAGES.has(contentType);
  return {
    contentType: inline ? contentType : 'application/octet-stream',
    disposition: `${inline ? 'inline' : 'attachment'}; ${dispositionName(name)}`,
  };
}

/** `filename` (ASCII fallback) and `filename*` (RFC 5987, UTF-8) for a Content-Disposition. */
function dispositionName(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}
