import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { Agent } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { DomainError } from '../errors.ts';

/**
 * The SSRF guard for outgoing requests (webhooks, push endpoints): https only, and no private,
 * loopback, link-local or otherwise non-public address unless allowed. Checked when a URL is
 * registered (here, for an early BAD_REQUEST) and again for the address actually connected to
 * (a DNS answer can change between the two: rebinding), by the agent of `guardedAgent`.
 */
const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
  ['2001:db8::', 32],
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

export function isPrivateAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) return blocked.check(ip, 'ipv4');
  if (v === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(ip, 'ipv6');
  }
  return true;
}

/** Checks a URL's form (https, no credentials, a host); throws BAD_REQUEST. */
export function checkUrlShape(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DomainError('BAD_REQUEST', 'not a URL');
  }
  if (url.protocol !== 'https:') throw new DomainError('BAD_REQUEST', 'only https URLs are allowed');
  if (url.username || url.password) throw new DomainError('BAD_REQUEST', 'URLs with credentials are not allowed');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) && isPrivateAddress(host)))) {
    throw new DomainError('BAD_REQUEST', 'private, loopback and link-local addresses are not allowed');
  }
  return url;
}

/**
 * Resolves the URL's host and refuses it when any address is private (at registration). A host
 * that does not resolve now is accepted: the connect-time lookup is the guard that counts.
 */
export async function checkUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  const url = checkUrlShape(raw, allowPrivate);
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return url;
  const addrs = await new Promise<LookupAddress[]>((res) => dnsLookup(host, { all: true }, (err, a) => res(err ? [] : a)));
  if (addrs.some((a) => isPrivateAddress(a.address))) {
    throw new DomainError('BAD_REQUEST', 'private, loopback and link-local addresses are not allowed');
  }
  return url;
}

/**
 * The HTTPS agent for push services and webhooks. `request-filtering-agent` checks the address
 * of every connection: a literal IP in the URL before connecting, and each answer of the
 * lookup, in both forms Node asks for (one address, or all of them with `all: true`, which
 * every connection to a name asks for since autoSelectFamily is on by default). Refused: every
 * address outside the public unicast range (private, loopback, link-local, CGNAT, multicast,
 * reserved, IPv4-mapped), and the unspecified address even when private ones are allowed.
 * `lookup` is the resolver below the check (tests resolve names under `.localhost` with it).
 */
export function guardedAgent(o: { allowPrivate: boolean; ca?: string | Buffer; lookup?: LookupFunction; maxSockets?: number }): Agent {
  return new RequestFilteringHttpsAgent({
    keepAlive: true,
    maxSockets: o.maxSockets ?? 64,
    allowPrivateIPAddress: o.allowPrivate,
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.lookup ? { lookup: o.lookup } : {}),
  });
}

/**
 * Whether a request failed because the guard refused the address: permanent, not worth a
 * retry. request-filtering-agent gives no error code, so its message is matched
 * ("DNS lookup <address>(family:…, host:…) is not allowed. Because, …").
 */
export function isRefusedAddress(err: unknown): boolean {
  return err instanceof Error && /^DNS lookup .+ is not allowed\./.test(err.message);
}
