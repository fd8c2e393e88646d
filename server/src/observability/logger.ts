import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs. Redaction is a second line of defence: code never logs passwords, tokens or bodies,
 * and these paths catch the places where a whole input object might slip through.
 */
export function createLogger(opts: { level: string; replicaId: string; name?: string }): Logger {
  return pino({
    level: opts.level,
    base: { replica: opts.replicaId, svc: opts.name ?? 'hub' },
    redact: {
      paths: [
        'password',
        '*.password',
        'current',
        '*.current',
        'next',
        '*.next',
        'token',
        '*.token',
        'accessToken',
        '*.accessToken',
        'refreshToken',
        '*.refreshToken',
        'authorization',
        '*.authorization',
        'headers.authorization',
        'body',
        '*.body',
      ],
      censor: '[redacted]',
    },
  });
}
