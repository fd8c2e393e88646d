import type { Chat } from './chat.ts';

/**
 * The sidebar's panels, one tab each. Chats is the conversation list; a wallet or a
 * notification-settings panel is one more entry here with its own render function.
 */
export interface Panel {
  id: string;
  label: string;
  render(chat: Chat, el: HTMLElement): void;
}

export const panels: Panel[] = [];

export function registerPanel(p: Panel) {
  panels.push(p);
}
