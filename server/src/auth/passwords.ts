import { Algorithm, hash, verify } from '@node-rs/argon2';

/**
 * Argon2id on libuv's thread pool (the @node-rs binding is async), never on the event loop.
 * Parameters default to OWASP's minimum: m=19456 KiB, t=2, p=1.
 */
export class PasswordHasher {
  private dummy: Promise<string>;
  constructor(private readonly params: { memoryCost: number; timeCost: number }) {
    // Verified against when the user does not exist, so unknown users take the same time.
    this.dummy = this.hash('not-a-real-password-' + Math.random());
  }

  hash(password: string): Promise<string> {
    return hash(password, {
      algorithm: Algorithm.Argon2id,
      memoryCost: this.params.memoryCost,
      timeCost: this.params.timeCost,
      parallelism: 1,
    });
  }

  async verify(stored: string | null | undefined, password: string): Promise<boolean> {
    const target = stored ?? (await this.dummy);
    try {
      const ok = await verify(target, password);
      return ok && stored != null;
    } catch {
      return false;
    }
  }
}
