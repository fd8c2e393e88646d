/**
 * What attachments cost. A hub on SeaweedFS (S3) with presigned uploads, one with uploads through the hub: 1 MB and
 * 10 MB uploads on each (create, PUT, complete), time per upload and hub CPU per upload; the time `complete` takes for
 * a 12-megapixel JPEG (type check, decode, thumbnail); and the fanout at one send rate without and with uploads
 * running against the same hub, alternating phases.
 */
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { createApiClient, uploadFile } from '@hubbub/client';
import { startSeaweed } from '../../test/helpers/seaweedfs.ts';
import { createDatabase } from '../../test/helpers/postgres.ts';
import { newHistogram, recordMs, summarize } from '../gen/runner.ts';
import { cpuSeconds, round } from '../harness/procs.ts';
import { hubEnv, startHubs, type ServerSet } from '../harness/servers.ts';
import { seedDatabase, type Rooms } from '../harness/seed.ts';
import type { Ctx } from '../harness/context.ts';
import { alternate, fanoutJobs } from './sockets.ts';

const hubCpu = (set: ServerSet) => set.procs.reduce((a, p) => a + cpuSeconds(p.pid), 0);
const MB = 1024 * 1024;

export async function attachments(ctx: Ctx) {
  const q = ctx.quick;
  const sizes = { uploads: q ? 4 : 20, rooms: q ? 5 : 10, roomSize: 20, rate: q ? 50 : 200, phaseS: q ? 4 : 10, uploaders: 2 };
  const databaseUrl = await createDatabase(ctx.pg.url);
  await ctx.migrate(databaseUrl);
  const seed = await seedDatabase(databaseUrl, ctx.jwtSecret, [
    { name: 'att', users: sizes.rooms * sizes.roomSize, roomSize: sizes.roomSize },
  ]);
  const s3 = await startSeaweed();
  ctx.cleanup(() => s3.stop());
  const tag = randomBytes(3).toString('hex');
  const common = {
    ...hubEnv({ databaseUrl, redisUrl: ctx.redis.url, redisPrefix: '', jwtSecret: ctx.jwtSecret, dataDir: ctx.work }),
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: `bench-${tag}`,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    ATTACHMENT_MAX_BYTES: String(50 * MB),
    ATTACHMENT_QUOTA_BYTES: String(1024 ** 4),
  };
  const hubs = {
    direct: await startHubs({ replicas: 1, env: { ...common, REDIS_PREFIX: `d${tag}:` }, label: 'Hubbub (presigned uploads)' }),
    hub: await startHubs({
      replicas: 1,
      env: { ...common, REDIS_PREFIX: `h${tag}:`, ATTACHMENT_UPLOADS: 'hub' },
      label: 'Hubbub (uploads through the hub)',
    }),
  };
  ctx.cleanup(() => Promise.all([hubs.direct.stop(), hubs.hub.stop()]));
  const rooms = seed.att as Rooms;
  const base = (set: ServerSet) => `http://127.0.0.1:${set.procs[0]!.port}`;
  const apiFor = (set: ServerSet, user: number) => createApiClient({ url: `${base(set)}/trpc`, getToken: () => seed.users[user]!.t });
  const sender = rooms[0]!.m[0]!;
  const upload = (set: ServerSet, bytes: Uint8Array, type: string, user = sender, room = rooms[0]!.id) =>
    uploadFile(apiFor(set, user), { baseUrl: base(set), conversationId: room, file: new Blob([bytes], { type }), name: 'bench.bin' });

  const figures: Record<string, number> = {};
  for (const mode of ['direct', 'hub'] as const) {
    for (const mb of [1, 10]) {
      const bytes = randomBytes(mb * MB);
      const h = newHistogram();
      // One upload first, unmeasured: the S3 client's first request loads and compiles its modules,
      // which a handful of measured uploads would otherwise share as if each paid for it.
      await upload(hubs[mode], bytes, 'application/octet-stream');
      const cpu0 = hubCpu(hubs[mode]);
      for (let i = 0; i < sizes.uploads; i++) {
        const t = performance.now();
        await upload(hubs[mode], bytes, 'application/octet-stream');
        recordMs(h, performance.now() - t);
      }
      const cpuMs = ((hubCpu(hubs[mode]) - cpu0) * 1000) / sizes.uploads;
      const s = summarize(h);
      figures[`upload${mb}MbMsP50_${mode}`] = s.p50;
      figures[`upload${mb}MbHubCpuMs_${mode}`] = round(cpuMs, 1);
      ctx.log(`attachments: ${mb} MB ${mode}: p50 ${s.p50} ms, hub CPU ${round(cpuMs, 1)} ms per upload`);
    }
  }

  // complete on a 12 MP photo: magic numbers, header, decode, thumbnail and preview.
  const photo = await sharp({
    create: { width: 4000, height: 3000, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 30 } },
  })
    .jpeg({ quality: 85 })
    .toBuffer();
  const thumbs = newHistogram();
  const api = apiFor(hubs.direct, sender);
  for (let i = 0; i < Math.max(2, sizes.uploads / 2); i++) {
    const created = await api.attachments.create.mutate({
      conversationId: rooms[0]!.id,
      name: 'p.jpg',
      size: photo.length,
      contentType: 'image/jpeg',
    });
    const put = await fetch(created.upload.url, { method: 'PUT', headers: created.upload.headers, body: photo });
    await put.arrayBuffer();
    const t = performance.now();
    await api.attachments.complete.mutate({ id: created.id });
    recordMs(thumbs, performance.now() - t);
  }
  figures.thumbnail12MpMsP50 = summarize(thumbs).p50;
  figures.photoBytes = photo.length;

  // Fanout on the presigned hub, without and with uploads running (1 MB each, back to back, from other rooms' members).
  const set = hubs.direct;
  let uploadsDuring = 0;
  const one = randomBytes(MB);
  const { off, on, cpu, counters } = await alternate(ctx, (mode) => {
    const jobs = fanoutJobs(ctx, set, { seed, rooms, rate: sizes.rate, durationS: sizes.phaseS, senders: 'first' });
    const during = () => {
      let running = true;
      const loops = Array.from({ length: sizes.uploaders }, async (_, k) => {
        const room = rooms[(k + 1) % rooms.length]!;
        // Paced: each uploader starts one every uploaders/uploadsPerS seconds; unpaced: back to back.
        const everyMs = ctx.sizes.uploadsPerS > 0 ? (1000 * sizes.uploaders) / ctx.sizes.uploadsPerS : 0;
        while (running) {
          const t = performance.now();
          await upload(set, one, 'application/octet-stream', room.m[1]!, room.id);
          uploadsDuring++;
          const rest = everyMs - (performance.now() - t);
          if (rest > 0 && running) await new Promise((r) => setTimeout(r, rest));
        }
      });
      return async () => void ((running = false), await Promise.all(loops));
    };
    return { set, jobs, durationS: sizes.phaseS, ...(mode === 'on' ? { during } : {}) };
  });
  ctx.record({
    name: 'attachments',
    server: 'Hubbub on SeaweedFS (presigned; through the hub)',
    kind: 'hubbub',
    durationS: sizes.phaseS * 4,
    counters: { ...counters, uploads_during_fanout: uploadsDuring, uploads_per_s_asked: ctx.sizes.uploadsPerS },
    figures: {
      ...figures,
      latencyP50NoUploads: off.p50,
      latencyP99NoUploads: off.p99,
      latencyP50Uploads: on.p50,
      latencyP99Uploads: on.p99,
      p99Ratio: round(on.p99 / off.p99, 3),
      hubCpuNoUploadsS: round(cpu.off, 2),
      hubCpuUploadsS: round(cpu.on, 2),
    },
  });
}
