import { z } from 'zod';
import {
  BLANK_MESSAGE,
  hasVisible,
  isMultiLine,
  isSingleLine,
  MULTI_LINE_MESSAGE,
  normaliseLines,
  SINGLE_LINE_MESSAGE,
} from '../protocol/text.ts';

/**
 * Input schemas shared by several routers. Objects are strict: unknown fields are BAD_REQUEST.
 * User-visible text is `line` or `paragraph`, whose characters protocol/text.ts decides.
 */

/** Single-line user-visible text (may be empty), trimmed. */
export const line = (max: number) =>
  z
    .string()
    .max(max)
    .refine(isSingleLine, SINGLE_LINE_MESSAGE)
    .transform((s) => s.trim());

/** Single-line user-visible text that shows something (names, titles), trimmed. */
export const requiredLine = (max: number) => line(max).refine(hasVisible, BLANK_MESSAGE);

/** Multi-line user-visible text (may be empty), line ends as LF, trimmed. */
export const paragraph = (max: number) =>
  z
    .string()
    .max(max)
    .refine(isMultiLine, MULTI_LINE_MESSAGE)
    .transform((s) => normaliseLines(s).trim());

// Lower-cased: ids are compared as text (direct conversation keys, sets of member ids).
export const userId = z.uuid().transform((s) => s.toLowerCase());
export const conversationId = z.uuid().transform((s) => s.toLowerCase());
export const email = z
  .email()
  .max(254)
  .transform((s) => s.toLowerCase());
export const username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[A-Za-z0-9_]+$/, 'may hold only letters, digits and underscores');
export const password = z.string().min(8).max(256);
export const displayName = requiredLine(64);

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
  }, 'is not a known IANA time zone');

export const refreshToken = z.string().min(10).max(200);

/** A login name or email as typed: one line (PostgreSQL text cannot hold NUL). */
export const loginName = z.string().min(1).max(254).refine(isSingleLine, SINGLE_LINE_MESSAGE);
