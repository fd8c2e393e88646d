import { z } from 'zod';

/** Input schemas shared by several routers. Objects are strict: unknown fields are BAD_REQUEST. */

// No control characters, no lone surrogates: text that is safe to show and store.
const printable = (s: string) => !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(s) && s.isWellFormed();

export const text = (max: number) =>
  z.string().max(max).refine(printable, 'contains control characters').transform((s) => s.trim());

export const userId = z.uuid();
export const conversationId = z.uuid();
export const email = z.email().max(254).transform((s) => s.toLowerCase());
export const username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[A-Za-z0-9_]+$/, 'letters, digits and underscore only');
export const password = z.string().min(8).max(256);
export const displayName = text(64).pipe(z.string().min(1, 'must not be blank'));

export const httpsUrl = z
  .url()
  .max(2048)
  .refine((u) => {
    try {
      return new URL(u).protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an https URL');

export const timezone = z
  .string()
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'unknown IANA time zone');

export const refreshToken = z.string().min(10).max(200);

/** A login name or email as typed: no control characters (PostgreSQL text cannot hold NUL). */
export const loginName = z.string().min(1).max(254).refine(printable, 'contains control characters');
