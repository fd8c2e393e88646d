import type { AttachmentMeta } from './protocol/types.ts';
import type { ApiClient } from './trpc-client.ts';

export interface UploadOptions {
  /** The hub's address; relative upload URLs (the hub's own) are resolved against it. */
  baseUrl: string;
  conversationId: string;
  /** A File, or a Blob with a name given here. */
  file: Blob;
  name?: string;
  /** Bytes sent so far and the total, as the upload goes (browsers; Node reports the end only). */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Uploads one file for a message: `attachments.create`, the PUT it answers with (straight to the
 * store where it signs URLs, else to the hub), then `attachments.complete`, which checks the
 * bytes. Resolves with what to pass to `send(conv, body, { attachments: [meta.id] })`.
 */
export async function uploadFile(api: ApiClient, o: UploadOptions): Promise<AttachmentMeta> {
  const name = o.name ?? (o.file as Blob & { name?: string }).name ?? 'file';
  const contentType = o.file.type || 'application/octet-stream';
  const created = await api.attachments.create.mutate({ conversationId: o.conversationId, name, size: o.file.size, contentType });
  const url = new URL(created.upload.url, o.baseUrl).toString();
  await put(url, created.upload.headers, o);
  return api.attachments.complete.mutate({ id: created.id });
}

/** The part of the DOM's XMLHttpRequest used here (the SDK is also type-checked without the DOM). */
interface Xhr {
  open(method: string, url: string): void;
  setRequestHeader(k: string, v: string): void;
  upload: { onprogress: ((ev: { loaded: number }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  status: number;
  abort(): void;
  send(body: Blob): void;
}

function put(url: string, headers: Record<string, string>, o: UploadOptions): Promise<void> {
  const total = o.file.size;
  // XMLHttpRequest reports upload progress; fetch does not.
  const XHR = (globalThis as { XMLHttpRequest?: new () => Xhr }).XMLHttpRequest;
  if (XHR) {
    return new Promise((resolve, reject) => {
      const xhr = new XHR();
      xhr.open('PUT', url);
      for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (ev) => o.onProgress?.(ev.loaded, total);
      xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`upload refused: HTTP ${xhr.status}`)));
      xhr.onerror = () => reject(new Error('upload failed: network error'));
      xhr.onabort = () => reject(new Error('upload aborted'));
      o.signal?.addEventListener('abort', () => xhr.abort());
      xhr.send(o.file);
    });
  }
  return fetch(url, { method: 'PUT', headers, body: o.file, signal: o.signal ?? null }).then(async (res) => {
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`upload refused: HTTP ${res.status}`);
    o.onProgress?.(total, total);
  });
}
