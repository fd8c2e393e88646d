import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hasVisible, isMultiLine, isSingleLine, normaliseLines } from './text.ts';

const hex = (s: string) => [...s].map((c) => 'U+' + c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')).join(' ');

describe('user-visible text: one rule for every field', () => {
  test('refused in every kind of text: C0 (but TAB, LF, CR), DEL, C1, U+2028/2029, bidi embeddings, overrides and isolates, BOM, noncharacters, lone surrogates', () => {
    const never = [
      ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).filter((c) => !'\t\n\r'.includes(c)),
      '\u007f',
      ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(0x80 + i)),
      '\u2028',
      '\u2029',
      '\u202a',
      '\u202b',
      '\u202c',
      '\u202d',
      '\u202e',
      '\u2066',
      '\u2067',
      '\u2068',
      '\u2069',
      '\u206a',
      '\u206f',
      '\ufeff',
      '\ufff9',
      '\ufffb',
      '\ufffe',
      '\uffff',
      '\ud800',
      '\udfff',
    ];
    for (const c of never) {
      assert.equal(isMultiLine(`a${c}b`), false, `multi-line refuses ${hex(c)}`);
      assert.equal(isSingleLine(`a${c}b`), false, `single-line refuses ${hex(c)}`);
    }
  });

  test('single-line text also refuses line breaks, tabs and the characters that show as nothing', () => {
    for (const c of [
      '\t',
      '\n',
      '\r',
      '\u00ad',
      '\u034f',
      '\u115f',
      '\u1160',
      '\u17b4',
      '\u180e',
      '\u200b',
      '\u2060',
      '\u2064',
      '\u3164',
      '\uffa0',
    ]) {
      assert.equal(isSingleLine(`a${c}b`), false, `single-line refuses ${hex(c)}`);
      assert.equal(isMultiLine(`a${c}b`), true, `multi-line keeps ${hex(c)}`);
    }
    // The digest header injection the rule exists for.
    assert.equal(isSingleLine('Eve\r\nBcc: everyone@example.com'), false);
  });

  test('kept in both kinds: what real text needs (ZWJ emoji, ZWNJ, directional marks, variation selectors, tag flags, any script)', () => {
    for (const s of [
      '👨‍👩‍👧',
      'می‌خواهم',
      'abc \u200e(עברית)\u200f',
      '\u061c١٢٣',
      '❤️',
      '🏴󠁧󠁢󠁳󠁣󠁴󠁿',
      'Zoë Ðaniel 王小明',
      'a\u0301',
      'tab-free, line-free: fine!',
    ]) {
      assert.equal(isSingleLine(s), true, `single-line keeps ${hex(s)}`);
      assert.equal(isMultiLine(s), true, `multi-line keeps ${hex(s)}`);
    }
  });

  test('multi-line line ends become LF; nothing else is changed', () => {
    assert.equal(normaliseLines('a\r\nb\rc\n\r\nd'), 'a\nb\nc\n\nd');
    const s = 'tab\there\nnext';
    assert.equal(normaliseLines(s), s);
  });

  test('visible means a letter, number, punctuation mark or symbol: whitespace, joiners and marks alone are blank', () => {
    for (const s of ['x', '1', '.', '👍', '王', '\u200dx']) assert.equal(hasVisible(s), true, hex(s));
    for (const s of ['', ' ', '\u3000', '\u200d', '\u200c\u200e', '\u0301', '\ufe0f', '\u200b']) assert.equal(hasVisible(s), false, hex(s));
  });
});
