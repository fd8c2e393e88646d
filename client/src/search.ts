import type { ApiOutputs } from './trpc-client.ts';

/** One hit of `messages.search`. */
export type SearchHit = ApiOutputs['messages']['search']['hits'][number];

/** A piece of a snippet: plain text, marked (`mark: true`) where it matched the query. */
export interface SnippetPart {
  text: string;
  mark: boolean;
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };

/**
 * A hit's snippet as text pieces, for rendering with text nodes (never as HTML): the server
 * escapes everything but its own `<mark>`…`</mark>`, so a `<mark>` typed in a message arrives
 * as `&lt;mark&gt;` and stays text here.
 */
export function snippetParts(snippet: string): SnippetPart[] {
  const out: SnippetPart[] = [];
  const unescaped = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e]!);
  for (const [i, piece] of snippet.split(/<\/?mark>/).entries()) {
    if (piece) out.push({ text: unescaped(piece), mark: i % 2 === 1 });
  }
  return out;
}
