import { execFileSync } from 'node:child_process';
import { createDecipheriv, createECDH, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { lookup, type LookupOptions } from 'node:dns';
import type { AddressInfo, LookupFunction } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { importJWK, jwtVerify } from 'jose';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * Real far ends for the notification tests: an HTTPS push service that checks VAPID and decrypts
 * RFC 8291 bodies, an SMTP server, and a webhook receiver, all in the test process on port 0.
 */

/**
 * A self-signed certificate for `localhost`, 127.0.0.1 and the extra names given (e.g.
 * `hooks.localhost`), made with openssl on the command line; the workers get its CA injected.
 */
export function selfSigned(names: string[] = []): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-tls-'));
  const san = ['IP:127.0.0.1', 'DNS:localhost', ...names.map((n) => `DNS:${n}`)].join(',');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        `subjectAltName=${san}`,
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The resolver the test workers use below the SSRF guard: names under `.localhost` are loopback
 * (RFC 6761), which the system resolver here does not know; every other name goes to
 * `dns.lookup`. It answers both forms Node asks for: one address, or all of them (`all: true`,
 * which a connection with autoSelectFamily asks for).
 */
export const resolveLocalhostNames = ((hostname: string, options: LookupOptions, callback: (...a: unknown[]) => void) => {
  if (!hostname.endsWith('.localhost')) return lookup(hostname, options, callback as never);
  if (options.family === 6)
    return process.nextTick(callback, Object.assign(new Error(`${hostname}: no IPv6 address`), { code: 'ENOTFOUND' }));
  if (options.all) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
  process.nextTick(callback, null, '127.0.0.1', 4);
}) as LookupFunction;

/** A browser's push subscription: its keys stay here, so the push service can decrypt. */
export class Browser {
  readonly ecdh = createECDH('prime256v1');
  readonly auth = randomBytes(16);
  readonly publicKey: Buffer;
  constructor(readonly endpoint: string) {
    this.publicKey = this.ecdh.generateKeys();
  }
  get subscription() {
    return { endpoint: this.endpoint, keys: { p256dh: this.publicKey.toString('base64url'), auth: this.auth.toString('base64url') } };
  }

  /** RFC 8291 (aes128gcm) with node:crypto: ECDH P-256, HKDF, AES-128-GCM, one record. */
  decrypt(body: Buffer): string {
    const salt = body.subarray(0, 16);
    const idlen = body[20]!;
    const asPublic = body.subarray(21, 21 + idlen);
    const ciphertext = body.subarray(21 + idlen);
    const secret = this.ecdh.computeSecret(asPublic);
    const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), this.publicKey, asPublic]);
    const ikm = Buffer.from(hkdfSync('sha256', secret, this.auth, keyInfo, 32));
    const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
    const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
    const d = createDecipheriv('aes-128-gcm', cek, nonce);
    d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    const padded = Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (padded[end] !== 2) throw new Error('bad record delimiter');
    return padded.subarray(0, end).toString('utf8');
  }
}

export interface PushRequest {
  path: string;
  topic?: string;
  ttl?: string;
  body: Buffer;
  /** The decrypted payload, parsed. */
  payload: Record<string, any>;
  status: number;
}

/**
 * Plays the push service: verifies the VAPID JWT (ES256 under the `k` key, audience = this
 * origin, expiry within 24 h, a subject) and the encrypted body, then answers the status the
 * test scripted for that path (201 by default). Like real push services, a message with the
 * same Topic replaces the one still held (`notifications` keeps one per topic).
 */
export class PushService {
  readonly requests: PushRequest[] = [];
  readonly notifications = new Map<string, Record<string, any>>();
  private script = new Map<string, { status: number; headers?: Record<string, string> }[]>();
  private browsers = new Map<string, Browser>();
  private hold: ((release: () => void) => void) | null = null;
  private server!: Server;
  port = 0;
  origin = '';

  /** `host` names the service in its endpoints (it listens on 127.0.0.1): `localhost`, or a name under `.localhost`. */
  constructor(
    private readonly tls: { key: string; cert: string },
    private readonly vapidPublicKey: string,
    private readonly host = 'localhost',
  ) {}

  async start() {
    this.server = createServer(this.tls, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on(
        'end',
        () =>
          void this.handle(req.url ?? '/', req.headers, Buffer.concat(chunks)).then(
            ({ status, headers }) => res.writeHead(status, headers).end(),
            (err) => res.writeHead(400).end(String(err)),
          ),
      );
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    this.origin = `https://${this.host}:${this.port}`;
    return this;
  }

  browser(): Browser {
    const b = new Browser(`${this.origin}/push/${randomBytes(8).toString('hex')}`);
    this.browsers.set(new URL(b.endpoint).pathname, b);
    return b;
  }

  /** The next answers for a browser, in order; then 201. */
  answer(b: Browser, ...answers: { status: number; headers?: Record<string, string> }[]) {
    this.script.set(new URL(b.endpoint).pathname, answers);
  }

  /** Holds the next request open until the callback releases it (a worker can be killed meanwhile). */
  holdNext(fn: (release: () => void) => void) {
    this.hold = fn;
  }

  /** Resolves once `n` requests reached this browser's endpoint. */
  async waitFor(b: Browser, n: number, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    while (this.to(b).length < n) {
      if (Date.now() > deadline) throw new Error(`push service: ${this.to(b).length} of ${n} requests`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(0, deadline - Date.now()));
        this.arrived.push(() => (clearTimeout(t), r()));
      });
    }
  }
  private arrived: (() => void)[] = [];

  to(b: Browser) {
    return this.requests.filter((r) => r.path === new URL(b.endpoint).pathname);
  }

  private async handle(p: string, h: Record<string, string | string[] | undefined>, body: Buffer) {
    const auth = String(h.authorization ?? '');
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(auth);
    if (!m) throw new Error('no VAPID authorization');
    if (m[2] !== this.vapidPublicKey) throw new Error('unknown VAPID key');
    const raw = Buffer.from(m[2]!, 'base64url');
    const key = await importJWK(
      { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') },
      'ES256',
    );
    const { payload: claims } = await jwtVerify(m[1]!, key, { algorithms: ['ES256'], audience: this.origin });
    const now = Date.now() / 1000;
    if (!claims.exp || claims.exp > now + 24 * 3600 + 60) throw new Error('VAPID exp more than 24 h ahead');
    if (!/^(mailto:|https:)/.test(String(claims.sub))) throw new Error('VAPID sub missing');
    if (h['content-encoding'] !== 'aes128gcm') throw new Error('not aes128gcm');
    const browser = this.browsers.get(p);
    if (!browser) return { status: 404 };
    const payload = JSON.parse(browser.decrypt(body));
    if (this.hold) {
      const hold = this.hold;
      this.hold = null;
      await new Promise<void>((release) => hold(release));
    }
    const next = this.script.get(p)?.shift() ?? { status: 201 };
    const topic = h.topic as string | undefined;
    this.requests.push({ path: p, topic, ttl: h.ttl as string, body, payload, status: next.status });
    if (next.status === 201) this.notifications.set(topic ?? randomBytes(8).toString('hex'), payload);
    for (const w of this.arrived.splice(0)) w();
    return next;
  }

  close() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A real SMTP server (smtp-server) that parses what arrives (mailparser) and can answer errors. */
export class SmtpSink {
  readonly mails: ParsedMail[] = [];
  private waiters: (() => void)[] = [];
  private errors: { code: number; message: string }[] = [];
  private server: SMTPServer;
  port = 0;

  constructor() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, _session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const err = this.errors.shift();
          if (err) return cb(Object.assign(new Error(err.message), { responseCode: err.code }));
          void simpleParser(Buffer.concat(chunks)).then((mail) => {
            this.mails.push(mail);
            for (const w of this.waiters.splice(0)) w();
            cb();
          }, cb);
        });
      },
    });
  }

  async start() {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  get url() {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Resolves with the first mail that matches, waiting up to `timeoutMs` for it. */
  async waitFor(match: (m: ParsedMail) => boolean, timeoutMs = 15_000): Promise<ParsedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mail = this.mails.find(match);
      if (mail) return mail;
      if (Date.now() > deadline) throw new Error(`smtp: no matching mail in ${timeoutMs} ms (${this.mails.length} mails)`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(0, deadline - Date.now()));
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  /** The next messages are refused with this SMTP code (4xx: try later, 5xx: permanent). */
  refuseNext(code: number, message = 'refused by the test') {
    this.errors.push({ code, message });
  }

  close() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

export interface WebhookHit {
  id: string;
  path: string;
  body: string;
  json: Record<string, any>;
  verified: boolean;
  /** performance.now() when the request had arrived whole. */
  at: number;
}

/**
 * A webhook receiver that verifies `Hubbub-Signature` with the secret it was given. With
 * `hang`, it reads each request and never answers (a receiver that accepts and stalls).
 */
export class WebhookReceiver {
  readonly hits: WebhookHit[] = [];
  secret = '';
  private server!: Server;
  private arrived: (() => void)[] = [];
  url = '';

  /** `host` names the receiver in its URL (it listens on 127.0.0.1): `localhost`, or a name under `.localhost`. */
  constructor(
    private readonly tls: { key: string; cert: string },
    private readonly o: { host?: string; hang?: boolean } = {},
  ) {}

  async start() {
    this.server = createServer(this.tls, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const sig = String(req.headers['hubbub-signature'] ?? '');
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
        let verified = false;
        if (m) {
          const want = createHmac('sha256', this.secret).update(`${m[1]}.${body}`).digest();
          verified = timingSafeEqual(want, Buffer.from(m[2]!, 'hex'));
        }
        this.hits.push({
          id: String(req.headers['hubbub-event-id']),
          path: req.url ?? '/',
          body,
          json: JSON.parse(body),
          verified,
          at: performance.now(),
        });
        for (const w of this.arrived.splice(0)) w();
        if (!this.o.hang) res.writeHead(verified ? 204 : 401).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `https://${this.o.host ?? 'localhost'}:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  /** Resolves with the first hit that matches, once it has arrived. */
  async waitFor(match: (h: WebhookHit) => boolean, timeoutMs = 15_000): Promise<WebhookHit> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.hits.find(match);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`webhook receiver: no matching hit in ${timeoutMs} ms (${this.hits.length} hits)`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(0, deadline - Date.now()));
        this.arrived.push(() => (clearTimeout(t), r()));
      });
    }
  }

  close() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}
