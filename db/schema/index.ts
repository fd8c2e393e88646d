export * from './users.ts';
export * from './conversations.ts';
export * from './message-log.ts';
export * from './payments.ts';
export * from './notifications.ts';
export * from './search.ts';
export * from './attachments.ts';
