/**
 * The one rule for user-visible text: which characters a string that other people will see may
 * hold. Every input that takes such text (tRPC inputs in api/inputs.ts, socket frames in
 * frames.ts and fast-frames.ts) applies it from here; docs/protocol.md states it for clients.
 *
 * Two kinds of field:
 * - single-line (display name, group title, status text, reaction emoji, search query): no line
 *   breaks or tabs, and none of the invisible characters that make a name look like another
 *   one or look blank;
 * - multi-line (message body, bio, topic, tip note): line feed and tab allowed; CR LF and a lone
 *   CR are turned into LF (the one normalisation: clients differ in how they end lines).
 *
 * Refused in both kinds (the input is BAD_REQUEST, never silently cleaned): C0 controls other
 * than the ones above, DEL, C1 controls, the line and paragraph separators U+2028/U+2029, the
 * bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069: they reorder the text
 * around them, as in "Trojan Source"), the deprecated format characters U+206A–U+206F, the
 * interlinear annotation characters U+FFF9–U+FFFB, the BOM U+FEFF, the noncharacters U+FFFE and
 * U+FFFF, and unpaired surrogates.
 *
 * Kept, because real text needs them: ZWJ (emoji sequences), ZWNJ (Persian, Indic scripts), the
 * directional marks LRM, RLM and ALM (mixing right-to-left and left-to-right text), variation
 * selectors and tag characters (emoji presentation, subdivision flags). A multi-line text may
 * also hold U+200B, which Thai and Khmer use as a word break hint.
 */

/** Refused in every kind of text (TAB, LF and CR are decided by the kind). */
const NEVER =
  '\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB\\uFFFE\\uFFFF';
/**
 * Refused in single-line text on top of NEVER: line breaks and tabs, and characters that show
 * as nothing (zero width space, word joiner and the invisible operators, soft hyphen, combining
 * grapheme joiner, the Hangul fillers, Mongolian vowel separator, Khmer inherent vowels).
 */
const INVISIBLE = '\\u0009\\u000A\\u000D\\u00AD\\u034F\\u115F\\u1160\\u17B4\\u17B5\\u180E\\u200B\\u2060-\\u2064\\u3164\\uFFA0';

const NOT_MULTI_LINE = new RegExp(`[${NEVER}]`);
const NOT_SINGLE_LINE = new RegExp(`[${NEVER}${INVISIBLE}]`);
/** Something a reader sees: a letter, number, punctuation mark or symbol (emoji are symbols). */
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}]/u;
const CR = /\r\n?/g;

export const SINGLE_LINE_MESSAGE = 'must be one line of visible text (no control, invisible or bidi override characters)';
export const MULTI_LINE_MESSAGE = 'contains control or bidi override characters';
export const BLANK_MESSAGE = 'must not be blank';

/** Whether `s` is allowed as single-line text. */
export function isSingleLine(s: string): boolean {
  return !NOT_SINGLE_LINE.test(s) && s.isWellFormed();
}

/** Whether `s` is allowed as multi-line text (before its line ends are normalised). */
export function isMultiLine(s: string): boolean {
  return !NOT_MULTI_LINE.test(s) && s.isWellFormed();
}

/** Multi-line text with CR LF and lone CR turned into LF. */
export function normaliseLines(s: string): string {
  return s.includes('\r') ? s.replace(CR, '\n') : s;
}

/** Whether `s` shows anything (whitespace, marks and joiners alone do not). */
export function hasVisible(s: string): boolean {
  return VISIBLE.test(s);
}
