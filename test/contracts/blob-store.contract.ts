/**
 * The BlobStore contract: one set of test bodies every adapter passes (blob-store.test.ts runs it
 * on local disk and on SeaweedFS over S3). Spec id 12.2: attachments' bytes live in blob storage,
 * local disk by default, an S3-compatible store with presigned upload and download URLs when
 * configured.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import type { BlobStore } from '../../server/src/attachments/blob-store.ts';
import { fixtureTest } from './fixture-test.ts';

export interface BlobStoreFixture {
  store: BlobStore;
  /** Moves the store's clock (where it signs URLs): URLs are then signed as at that time. */
  skewClock?(ms: number): void;
  cleanup(): Promise<void>;
}

const collect = async (it: AsyncIterable<Uint8Array>) => {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
};

export function registerBlobStoreContractTests(name: string, make: () => Promise<BlobStoreFixture>) {
  describe(`BlobStore contract on ${name}`, () => {
    const run = fixtureTest(make);

    run('12.2 put then stat, read and stream give back the same bytes', async ({ store }) => {
      const key = `${randomUUID()}/file`;
      const bytes = randomBytes(300_000);
      await store.put(key, bytes, 'application/octet-stream');
      assert.deepEqual(await store.stat(key), { size: bytes.length });
      assert.ok((await store.read(key))!.equals(bytes));
      assert.ok((await collect((await store.stream(key))!)).equals(bytes));
    });

    run('12.2 read with a byte limit returns only the start; a limit past the end returns the whole blob', async ({ store }) => {
      const key = `${randomUUID()}/file`;
      const bytes = randomBytes(5000);
      await store.put(key, bytes, 'application/octet-stream');
      assert.ok((await store.read(key, 100))!.equals(bytes.subarray(0, 100)));
      assert.ok((await store.read(key, 10_000))!.equals(bytes));
    });

    run(
      '12.2 peek gives the whole size and only the first bytes; an empty blob peeks as size 0; a missing one as null',
      async ({ store }) => {
        const key = `${randomUUID()}/file`;
        const bytes = randomBytes(50_000);
        await store.put(key, bytes, 'application/octet-stream');
        const p = (await store.peek(key, 4100))!;
        assert.equal(p.size, bytes.length);
        assert.ok(p.head.equals(bytes.subarray(0, 4100)));
        const whole = (await store.peek(key, 100_000))!;
        assert.deepEqual([whole.size, whole.head.equals(bytes)], [bytes.length, true]);
        const empty = `${randomUUID()}/file`;
        await store.put(empty, new Uint8Array(0), 'text/plain');
        assert.deepEqual(await store.peek(empty, 100), { size: 0, head: Buffer.alloc(0) });
        assert.equal(await store.peek(`${randomUUID()}/file`, 100), null);
      },
    );

    run('12.2 an empty blob is a blob of size 0', async ({ store }) => {
      const key = `${randomUUID()}/file`;
      await store.put(key, new Uint8Array(0), 'text/plain');
      assert.deepEqual(await store.stat(key), { size: 0 });
      assert.equal((await store.read(key, 100))!.length, 0);
    });

    run('12.2 a missing key: stat, read and stream say null, delete is no error', async ({ store }) => {
      const key = `${randomUUID()}/file`;
      assert.equal(await store.stat(key), null);
      assert.equal(await store.read(key), null);
      assert.equal(await store.read(key, 10), null);
      assert.equal(await store.stream(key), null);
      await store.delete([key]);
    });

    run('12.2 put replaces; delete removes every key given and leaves the others', async ({ store }) => {
      const a = randomUUID();
      const b = randomUUID();
      await store.put(`${a}/file`, Buffer.from('one'), 'text/plain');
      await store.put(`${a}/file`, Buffer.from('two!'), 'text/plain');
      assert.equal((await store.read(`${a}/file`))!.toString(), 'two!');
      await store.put(`${a}/thumb`, Buffer.from('t'), 'image/webp');
      await store.put(`${b}/file`, Buffer.from('other'), 'text/plain');
      assert.deepEqual(await store.list(`${a}/`), [`${a}/file`, `${a}/thumb`]);
      await store.delete([`${a}/file`, `${a}/thumb`]);
      assert.deepEqual(await store.list(`${a}/`), []);
      assert.equal(await store.stat(`${a}/file`), null);
      assert.deepEqual(await store.list(`${b}/`), [`${b}/file`]);
    });

    run('12.2 list pages past 1000 keys', async ({ store }) => {
      const prefix = randomUUID();
      const keys = Array.from({ length: 1005 }, (_, i) => `${prefix}/k${String(i).padStart(4, '0')}`);
      for (let i = 0; i < keys.length; i += 50)
        await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, Buffer.from('x'), 'text/plain')));
      assert.deepEqual(await store.list(`${prefix}/`), keys);
      await store.delete(keys);
      assert.deepEqual(await store.list(`${prefix}/`), []);
    });

    run('12.2 concurrent puts of one key leave one whole blob, never a mix', async ({ store }) => {
      const key = `${randomUUID()}/file`;
      const versions = Array.from({ length: 6 }, () => randomBytes(200_000));
      await Promise.all(versions.map((v) => store.put(key, v, 'application/octet-stream')));
      const got = (await store.read(key))!;
      assert.ok(
        versions.some((v) => v.equals(got)),
        'the stored bytes are one of the versions written',
      );
    });

    run('12.2 a key that could escape the store is refused', async ({ store }) => {
      for (const key of ['../outside', 'a/../../b', '/abs', '']) {
        await assert.rejects(store.put(key, Buffer.from('x'), 'text/plain'));
      }
    });

    run(
      '12.2 direct transfer (where the store signs URLs): a presigned PUT stores the bytes, a presigned GET serves them with the headers asked',
      async ({ store }) => {
        if (store.kind === 'disk') {
          assert.equal(store.direct, undefined, 'the disk store has no direct transfer: the hub serves its bytes');
          return;
        }
        const direct = store.direct!;
        const key = `${randomUUID()}/file`;
        const bytes = randomBytes(70_000);
        const up = await direct.uploadUrl(key, { contentType: 'image/png', size: bytes.length, expiresInS: 60 });
        assert.equal(up.method, 'PUT');
        const put = await fetch(up.url, { method: 'PUT', headers: up.headers, body: bytes });
        assert.equal(put.status, 200, await put.text());
        assert.deepEqual(await store.stat(key), { size: bytes.length });
        const url = await direct.downloadUrl(key, { contentType: 'image/png', disposition: 'inline; filename="a.png"', expiresInS: 60 });
        const get = await fetch(url);
        assert.equal(get.status, 200);
        assert.equal(get.headers.get('content-type'), 'image/png');
        assert.equal(get.headers.get('content-disposition'), 'inline; filename="a.png"');
        assert.ok(Buffer.from(await get.arrayBuffer()).equals(bytes));
      },
    );

    run(
      '12.2 a presigned PUT is refused with another content type, another length, or a changed signature; nothing is stored',
      async ({ store }) => {
        if (!store.direct) return assert.equal(store.kind, 'disk');
        const key = `${randomUUID()}/file`;
        const bytes = randomBytes(1000);
        const up = await store.direct.uploadUrl(key, { contentType: 'image/png', size: bytes.length, expiresInS: 60 });
        const wrongType = await fetch(up.url, { method: 'PUT', headers: { 'content-type': 'text/html' }, body: bytes });
        assert.equal(wrongType.status, 403, 'another content type');
        const wrongLength = await fetch(up.url, { method: 'PUT', headers: up.headers, body: randomBytes(1001) });
        assert.ok(wrongLength.status >= 400, `another length: ${wrongLength.status}`);
        const tampered = up.url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
        assert.notEqual(tampered, up.url);
        const bad = await fetch(tampered, { method: 'PUT', headers: up.headers, body: bytes });
        assert.equal(bad.status, 403, 'changed signature');
        assert.equal(await store.stat(key), null);
      },
    );

    run('12.2 a presigned URL stops working once it has expired', async ({ store, skewClock }) => {
      if (!store.direct) return assert.equal(store.kind, 'disk');
      const key = `${randomUUID()}/file`;
      await store.put(key, Buffer.from('hello'), 'text/plain');
      const opts = { contentType: 'text/plain', disposition: 'attachment', expiresInS: 30 };
      assert.equal((await fetch(await store.direct.downloadUrl(key, opts))).status, 200);
      // Signed 31 s ago with a 30 s lifetime: the store sees an expired URL.
      skewClock!(-31_000);
      const expired = await store.direct.downloadUrl(key, opts);
      assert.equal((await fetch(expired)).status, 403);
      const up = await store.direct.uploadUrl(`${randomUUID()}/file`, { contentType: 'text/plain', size: 1, expiresInS: 30 });
      assert.equal((await fetch(up.url, { method: 'PUT', headers: up.headers, body: 'x' })).status, 403);
    });
  });
}
