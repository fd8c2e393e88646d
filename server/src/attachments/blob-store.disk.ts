import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type BlobStore, checkKey } from './blob-store.ts';

/**
 * Blobs as files under one folder (DATA_DIR/blobs in the embedded default). A put writes a
 * temporary file and renames it into place, so a reader never sees half a blob. No direct
 * transfer: the hub serves uploads and downloads behind its own signed tokens.
 */
export class DiskBlobStore implements BlobStore {
  readonly kind = 'disk' as const;
  private readonly root: string;

  constructor(dir: string) {
    this.root = path.resolve(dir);
  }

  private file(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  async put(key: string, body: Uint8Array) {
    const file = this.file(key);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = path.join(this.root, `.tmp-${randomBytes(8).toString('hex')}`);
    try {
      await writeFile(tmp, body, { flush: true });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async stat(key: string) {
    try {
      const s = await stat(this.file(key));
      return s.isFile() ? { size: s.size } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** The blob's file open for reading; null when there is none. */
  private async openBlob(key: string) {
    try {
      return await open(this.file(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async read(key: string, maxBytes?: number) {
    const fh = await this.openBlob(key);
    if (!fh) return null;
    try {
      if (maxBytes === undefined) return await fh.readFile();
      const buf = Buffer.alloc(maxBytes);
      const { bytesRead } = await fh.read(buf, 0, maxBytes, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  async peek(key: string, maxBytes: number) {
    const fh = await this.openBlob(key);
    if (!fh) return null;
    try {
      const { size } = await fh.stat();
      const buf = Buffer.alloc(Math.min(maxBytes, size));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return { size, head: buf.subarray(0, bytesRead) };
    } finally {
      await fh.close();
    }
  }

  async stream(key: string) {
    if (!(await this.stat(key))) return null;
    return createReadStream(this.file(key), { highWaterMark: 256 * 1024 });
  }

  async delete(keys: string[]) {
    const dirs = new Set<string>();
    for (const key of keys) {
      const file = this.file(key);
      await rm(file, { force: true });
      dirs.add(path.dirname(file));
    }
    // Empty per-attachment folders go too, so nothing of a deleted attachment is left.
    for (const dir of dirs) {
      if (dir === this.root) continue;
      try {
        if ((await readdir(dir)).length === 0) await rm(dir, { recursive: true, force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  async list(prefix: string) {
    const out: string[] = [];
    const walk = async (dir: string, rel: string) => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const name of names) {
        if (name.startsWith('.tmp-')) continue;
        const p = path.join(dir, name);
        const k = rel ? `${rel}/${name}` : name;
        if ((await stat(p)).isDirectory()) await walk(p, k);
        else if (k.startsWith(prefix)) out.push(k);
      }
    };
    await walk(this.root, '');
    return out.sort();
  }

  async close() {}
}
