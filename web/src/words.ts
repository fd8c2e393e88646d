import { errorText, HubbubError } from '@hubbub/client';

/**
 * Every sentence the page shows a person, in one place: read them together, keep one voice.
 * Functions take what varies; callers never glue sentences from fragments.
 */

/** The hub's limit on a message body (characters, as JavaScript counts them); the default of MAX_BODY_CHARS. */
export const MAX_BODY_CHARS = 4000;

const n = (count: number) => count.toLocaleString('en');
/** "1 member", "2 members", "1,000 members". */
export const plural = (count: number, one: string, many = `${one}s`) => `${n(count)} ${count === 1 ? one : many}`;
/** "Ann", "Ann and Bob", "Ann, Bob and Cy". */
export function list(names: string[]) {
  if (names.length <= 1) return names[0] ?? '';
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

export const w = {
  appName: 'Hubbub',
  loading: 'Loading…',
  // Sign-in
  signIn: 'Sign in',
  signUp: 'Create account',
  toSignUp: 'New here? Create an account',
  toSignIn: 'I have an account: sign in',
  email: 'Email',
  username: 'Username',
  displayName: 'Display name',
  password: 'Password',
  login: 'Username or email',
  signOut: 'Sign out',

  // The shell
  newMessage: 'New message',
  newGroup: 'New group',
  sections: 'Sections',
  chats: 'Chats',
  wallet: 'Wallet',
  notifications: 'Notifications',
  search: 'Search',
  searchMessagesLabel: 'Search messages',
  searchButton: 'Search',
  searchPlaceholder: 'Words, "a phrase", from:name, in:group, after:2026-01-31',
  searchCount: (count: number) => (count ? `${plural(count, 'message')} found` : 'No messages found.'),
  unknownConversation: 'A conversation',
  back: 'Back to conversations',
  pickConversation: 'Pick a conversation, or start one.',
  noConversations: 'No conversations yet. Start one with “New message”.',
  connecting: 'Connecting…',
  reconnecting: 'Connection lost. Reconnecting… Messages you send now will go out when it is back.',
  originRefused: (origin: string) =>
    `This page’s address (origin ${origin}) is not allowed by the server, so chat cannot connect. Ask the operator to add ${origin} to ALLOWED_ORIGINS.`,
  unreadTitle: (count: number) => (count ? `(${count}) Hubbub` : 'Hubbub'),

  // The conversation list
  noMessagesYet: 'No messages yet',
  youPrefix: 'You: ',
  messageDeleted: 'Message deleted',
  muted: 'Muted',
  unreadBadge: (count: number, more: boolean) => `${count}${more ? '+' : ''}`,
  unreadLabel: (count: number, more: boolean) => `${more ? 'more than ' : ''}${plural(count, 'unread message')}`,
  online: 'online',
  offline: 'offline',
  someone: 'Someone',
  justYou: 'Just you',
  group: 'Group',
  you: 'You',
  youObject: 'you',

  // A conversation
  members: (count: number) => plural(count, 'member'),
  tip: 'Tip',
  tipHint: 'Send money to someone here',
  mute: 'Mute',
  unmute: 'Unmute',
  membersButton: 'Members',
  messages: 'Messages',
  olderAbove: 'Scroll up for older messages',
  startOfConversation: 'This is the start of the conversation.',
  typing: (names: string[]) => (names.length ? `${list(names)} ${names.length > 1 ? 'are' : 'is'} typing…` : ''),
  seenBy: (names: string[]) => `Seen by ${list(names)}`,
  edited: '(edited)',
  deleted: 'Message deleted',
  messageActions: 'Actions for this message',
  react: (emoji: string) => `React with ${emoji}`,
  reactionCount: (emoji: string, names: string[]) => `${emoji} from ${list(names)}`,
  edit: 'Edit',
  delete: 'Delete',
  save: 'Save',
  cancel: 'Cancel',
  editLabel: 'Edit your message',
  editEmpty: 'A message cannot be empty: delete it instead.',
  deleteTitle: 'Delete this message?',
  deleteBody: 'It is removed for everyone in the conversation. This cannot be undone.',
  newMessageFrom: (name: string, body: string) => `${name}: ${body}`,

  // The composer
  composerLabel: 'Message',
  composerPlaceholder: 'Write a message',
  send: 'Send',
  typeFirst: 'Type a message first.',
  openFirst: 'Open a conversation first.',
  charsLeft: (left: number) => `${plural(left, 'character')} left`,
  charsOver: (over: number) => `${plural(over, 'character')} too long: a message holds at most ${n(MAX_BODY_CHARS)}.`,
  sending: 'Sending…',
  waiting: 'Waiting for connection…',
  retry: 'Retry',
  editFailed: 'Edit',
  discard: 'Discard',
  notSent: (why: string) => `Not sent. ${why}`,

  // Notes in a conversation
  joined: (names: string[]) => `${list(names)} joined`,
  added: (by: string, names: string[]) => `${by} added ${list(names)}`,
  left: (names: string[]) => `${list(names)} left`,
  removed: (by: string, names: string[]) => `${by} removed ${list(names)}`,
  createdGroup: (by: string, names: string[]) => `${by} created the group with ${list(names)}`,
  updated: 'The conversation was updated',

  // Dialogs
  close: 'Close',
  searchPeople: 'Search by username or name',
  searchLabel: 'Find people',
  noMatch: (q: string) => `No one matches “${q}”.`,
  message: 'Message',
  add: 'Add',
  startConversation: 'Start conversation',
  typeName: 'Type a name or username first.',
  noSuchUser: (q: string) => `There is no one called “${q}”.`,
  pickOne: (q: string) => `More than one person matches “${q}”: pick one below.`,
  groupName: 'Group name',
  nameGroup: 'Give the group a name.',
  addSomeone: 'Add at least one person to the group.',
  createGroup: 'Create group',
  chosen: 'People in the new group',
  remove: 'Remove',
  removeName: (name: string) => `Remove ${name}`,
  addPeople: 'Add people',
  leaveGroup: 'Leave group',
  leaveTitle: (title: string) => `Leave “${title}”?`,
  leaveBody: 'You will stop receiving its messages. Someone in the group can add you again.',
  leave: 'Leave',
  role: { owner: 'owner', admin: 'admin', member: '' } as Record<string, string>,

  // Tips and wallet
  tipTitle: (direct: boolean, title: string) => (direct ? `Send ${title} a tip` : `Send a tip in ${title}`),
  tipTo: (name: string) => `To ${name}`,
  tipToLabel: 'Who gets the tip',
  amountLabel: 'Amount',
  tipAmount: 'Amount, such as 1.50',
  tipNote: 'Note (optional)',
  sendTip: 'Send tip',
  yourBalance: (amount: string) => `Your balance: ${amount}`,
  nobodyToTip: 'There is no one else here to tip.',
  typeTipAmount: 'Type an amount, such as 1.50.',
  tipUnanswered: 'No answer from the server, so the tip may or may not have gone through. Press Send tip again: it is never sent twice.',
  tipped: (from: string, to: string, amount: string, note: string | null) => `${from} tipped ${to} ${amount}${note ? `: “${note}”` : ''}`,
  balance: 'Balance',
  owe: (amount: string) => `You owe ${amount} from a refund; what you receive next (a top-up, credit or tip) pays it first.`,
  topUpAmount: 'Amount, such as 10.00',
  topUp: 'Top up',
  typeTopUpAmount: 'Type an amount, such as 10.00.',
  topUpCreated: (id: string, amount: string) => `Top-up ${id} for ${amount} created; your balance grows when the card payment succeeds.`,
  plan: 'Plan',
  renews: (date: string) => `renews ${date}`,
  ends: (date: string) => `ends ${date}`,
  cancelRenewal: 'Cancel renewal',
  renewalOff: 'Renewal is off; the plan lasts to the end of its period.',
  perPeriod: (price: string, days: number) => `${price} every ${plural(days, 'day')}`,
  current: 'Current plan',
  resume: 'Resume',
  subscribe: 'Subscribe',
  renewsAgain: (plan: string) => `${plan} renews again.`,
  nowOn: (plan: string) => `You are on ${plan} now.`,
  history: 'History',
  noPayments: 'No payments yet.',
  tipToName: (name: string) => `Tip to ${name}`,
  tipFromName: (name: string) => `Tip from ${name}`,
  paymentKinds: {
    topup: 'Top-up',
    refund: 'Refund',
    refund_reversal: 'Refund returned',
    subscription: 'Plan',
    renewal: 'Plan renewal',
    grant: 'Credit',
  } as Record<string, string>,
  limits: (l: { sendRatePerS: number; sendBurst: number; connectionsPerUser: number; groupMembers: number; historyDepth: number }) =>
    [
      `Send up to ${plural(l.sendRatePerS, 'message')} a second (${n(l.sendBurst)} at once)`,
      `use ${plural(l.connectionsPerUser, 'device')} at a time`,
      `make groups of up to ${plural(l.groupMembers, 'person', 'people')}`,
      l.historyDepth >= 1e15 ? 'and read all history.' : `and read the last ${plural(l.historyDepth, 'message')} of each conversation.`,
    ].join(', '),
  lowBalance: 'Your balance is too low for that; nothing was charged.',
  inDebt: 'You owe money from a refund: top up to pay it before you spend.',
  paymentsOff: 'Card payments are not set up on this server, so you cannot top up here. Ask the people who run it for credit.',

  // Notification settings
  notifyBy: 'Notify me by',
  push: 'Push',
  pushHint: 'On the devices where push is on',
  emailDigest: 'Email digest',
  emailHint: 'A summary of what you missed',
  emailUnavailable: 'Email is not set up on this server, so no digest can be sent.',
  previews: 'Message previews',
  previewsHint: 'Show the text, not only “New message”',
  saved: 'Saved.',
  thisDevice: 'This device',
  pushOn: 'Push is on for this device.',
  pushOff: 'Push is off for this device.',
  pushTurningOn: 'Turning push on…',
  turnPushOn: 'Turn push on here',
  turnPushOff: 'Turn push off here',
  noPushApi: 'This browser has no Web Push.',
  swFailed: (why: string) => `The service worker could not be installed: ${why}`,
  pushNotConfigured: 'Web Push is not set up on this server.',
  pushBlocked: 'Notifications are blocked for this site in the browser’s settings.',
  pushSubscribeFailed: (why: string) => `This browser could not subscribe to push (${why}). Email and webhooks still work.`,
  pushRefused: (why: string) => `The server refused this browser’s push subscription: ${why}`,
  quietHours: 'Quiet hours',
  quietStart: 'Start',
  quietEnd: 'End',
  quietTz: 'Time zone',
  quietTzPlaceholder: 'Time zone, such as Europe/Paris',
  saveQuiet: 'Save quiet hours',
  quietOff: 'Quiet hours are off.',
  quietNeedTimes: 'Give quiet hours a start and an end.',
  quietNeedTz: 'Give quiet hours a time zone, such as Europe/Paris.',
  quietSaved: (start: string, end: string, tz: string) => `Quiet from ${start} to ${end} (${tz}).`,
  perConversation: 'Per conversation',
  levelFor: (title: string) => `Notifications for ${title}`,
  levels: { all: 'Everything', mentions: 'Mentions only', none: 'Nothing' },
  savedFor: (title: string) => `Saved for ${title}.`,
  signedOut: 'You are signed out.',
  somethingWrong: 'Something went wrong.',
};

/** What a field is called in a sentence, and what to say when the server finds its format wrong. */
const fields: Record<string, { name: string; format?: string }> = {
  password: { name: 'The password' },
  next: { name: 'The new password' },
  username: { name: 'The username', format: 'A username may hold only letters, digits and underscores.' },
  email: { name: 'The email address', format: 'That is not an email address.' },
  displayName: { name: 'The display name' },
  login: { name: 'The username or email' },
  title: { name: 'The group name' },
  query: { name: 'The search' },
  body: { name: 'The message' },
  timezone: { name: 'The time zone', format: 'That is not a time zone name, such as Europe/Paris.' },
  start: { name: 'The start time', format: 'Times are written as HH:MM, such as 22:30.' },
  end: { name: 'The end time', format: 'Times are written as HH:MM, such as 07:00.' },
  amount: { name: 'The amount' },
  note: { name: 'The note' },
};

interface Issue {
  code?: string;
  path?: (string | number)[];
  message?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  origin?: string;
}

function issueSentence(i: Issue): string {
  const key = String(i.path?.at(-1) ?? '');
  const f = fields[key] ?? { name: key ? `The ${key.replace(/([A-Z])/g, ' $1').toLowerCase()}` : 'Something you typed' };
  const unit = i.origin === 'string' ? 'character' : i.origin === 'array' ? 'item' : '';
  const count = (v: number | bigint | undefined) => (unit ? plural(Number(v), unit) : n(Number(v)));
  switch (i.code) {
    case 'too_small':
      return i.origin === 'string' && Number(i.minimum) === 1
        ? `${f.name} must not be empty.`
        : `${f.name} must be at least ${count(i.minimum)}.`;
    case 'too_big':
      return `${f.name} must be at most ${count(i.maximum)}.`;
    case 'invalid_format':
    case 'custom':
      if (i.message === 'must not be blank') return `${f.name} must not be empty.`;
      return f.format ?? `${f.name} is not valid.`;
    default:
      return `${f.name} is not valid.`;
  }
}

/** The hub's refusals of socket requests, in words (its own messages are terse, for developers). */
const socketErrors: Partial<Record<string, string>> = {
  PAYLOAD_TOO_LARGE: `It is longer than the ${n(MAX_BODY_CHARS)} characters a message may hold: shorten it, then send it again.`,
  FORBIDDEN: 'You cannot do that in this conversation.',
  NOT_FOUND: 'That message or conversation is not there any more.',
  RATE_LIMITED: 'Too many at once: wait a moment and try again.',
  CONNECTION_LOST: 'The connection dropped before the server answered: look at the conversation to see whether it was done.',
  TIMEOUT: 'The server did not answer in time. Try again.',
};

/** A refusal or failure as one sentence: the server's field problems in words, else the SDK's text. */
export function errorSentence(err: unknown): string {
  if (err instanceof HubbubError && socketErrors[err.code]) return socketErrors[err.code]!;
  const issues = (err as { data?: { zodIssues?: Issue[] } } | null)?.data?.zodIssues;
  if (Array.isArray(issues) && issues.length) return [...new Set(issues.map(issueSentence))].join(' ');
  return errorText(err) || w.somethingWrong;
}
