import type { Chat } from './chat.ts';

/**
 * The sidebar's panels, one tab each. Chats is the conversation list; a wallet or a
 * notification-settings panel is one more entry here with its own render function.
 */
export interface Panel {
  id: string;
  label: string;
  render(chat: Chat, el: HTMLElement): void;
  /** Called once per signed-in page, before it connects: where a panel subscribes to frames it shows live. */
  attach?(chat: Chat): void;
}

export const panels: Panel[] = [];

/** Chats is always the first tab (and the one shown at start), whatever order modules load in. */
export function registerPanel(p: Panel) {
  if (p.id === 'chats') panels.unshift(p);
  else panels.push(p);
}
