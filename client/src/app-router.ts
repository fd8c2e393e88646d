/**
 * The hub's tRPC router as clients see it. Generated from server/src/api/root.ts by
 * client/scripts/gen-app-router.ts: do not edit; `npm run generate -w @hubbub/client` rewrites it
 * and a test fails while it is stale. It imports only `@trpc/server`'s types, so a client project
 * compiles with neither the server's source nor its dependencies.
 */

import type { TRPCBuiltRouter, TRPCMutationProcedure, TRPCQueryProcedure } from '@trpc/server';

type Root = { ctx: object; meta: object; errorShape: ErrorShape; transformer: false };

/** The hub's tRPC router type: `createTRPCClient<AppRouter>(…)`, or `createApiClient`. */
export type AppRouter = TRPCBuiltRouter<Root, {
  auth: {
    register: TRPCMutationProcedure<{
      input: {
        email: string;
        username: string;
        password: string;
        displayName?: string | undefined;
      };
      output: {
        accessToken: string;
        refreshToken: string;
        expiresIn: number;
        user: {
          email: string;
          id: string;
          username: string;
          displayName: string;
          bio: string;
          avatarUrl: null | string;
          statusText: string;
          timezone: string;
          createdAt: string;
        };
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    login: TRPCMutationProcedure<{
      input: {
        login: string;
        password: string;
      };
      output: {
        accessToken: string;
        refreshToken: string;
        expiresIn: number;
        user: {
          email: string;
          id: string;
          username: string;
          displayName: string;
          bio: string;
          avatarUrl: null | string;
          statusText: string;
          timezone: string;
          createdAt: string;
        };
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    refresh: TRPCMutationProcedure<{
      input: {
        refreshToken: string;
      };
      output: {
        accessToken: string;
        refreshToken: string;
        expiresIn: number;
        user: {
          email: string;
          id: string;
          username: string;
          displayName: string;
          bio: string;
          avatarUrl: null | string;
          statusText: string;
          timezone: string;
          createdAt: string;
        };
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    logout: TRPCMutationProcedure<{
      input: {
        refreshToken: string;
      };
      output: {
        ok: true;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    logoutAll: TRPCMutationProcedure<{
      input: void;
      output: {
        ok: true;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    me: TRPCQueryProcedure<{
      input: void;
      output: {
        email: string;
        id: string;
        username: string;
        displayName: string;
        bio: string;
        avatarUrl: null | string;
        statusText: string;
        timezone: string;
        createdAt: string;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    changePassword: TRPCMutationProcedure<{
      input: {
        current: string;
        next: string;
      };
      output: {
        ok: true;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
  profiles: {
    get: TRPCQueryProcedure<{
      input: {
        userId: string;
      } | {
        username: string;
      };
      output: PublicProfile;
      meta: object;
      errorShape: ErrorShape;
    }>;
    update: TRPCMutationProcedure<{
      input: {
        displayName?: string | undefined;
        bio?: string | undefined;
        avatarUrl?: null | string | undefined;
        statusText?: string | undefined;
        timezone?: string | undefined;
      };
      output: PublicProfile;
      meta: object;
      errorShape: ErrorShape;
    }>;
    search: TRPCQueryProcedure<{
      input: {
        query: string;
        limit?: number | undefined;
      };
      output: PublicProfile[];
      meta: object;
      errorShape: ErrorShape;
    }>;
    block: TRPCMutationProcedure<{
      input: {
        userId: string;
      };
      output: {
        ok: true;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    unblock: TRPCMutationProcedure<{
      input: {
        userId: string;
      };
      output: {
        ok: true;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    blocked: TRPCQueryProcedure<{
      input: void;
      output: PublicProfile[];
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
  conversations: {
    createDirect: TRPCMutationProcedure<{
      input: {
        userId: string;
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    createGroup: TRPCMutationProcedure<{
      input: {
        title: string;
        memberIds: string[];
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    addMembers: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        userIds: string[];
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    removeMember: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        userId: string;
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    leave: TRPCMutationProcedure<{
      input: {
        conversationId: string;
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    update: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        title?: string | undefined;
        topic?: string | undefined;
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    setRole: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        userId: string;
        role: "admin" | "member";
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    list: TRPCQueryProcedure<{
      input: void;
      output: {
        id: string;
        kind: "direct" | "group";
        title: null | string;
        topic: null | string;
        createdAt: string;
        role: "admin" | "member" | "owner";
        members: {
          userId: string;
          role: "admin" | "member" | "owner";
        }[];
        lastSeq: number;
        readSeq: number;
        unread: number;
        muted: boolean;
        mutedUntil: null | string;
        lastMessage: EventFrame | null;
      }[];
      meta: object;
      errorShape: ErrorShape;
    }>;
    get: TRPCQueryProcedure<{
      input: {
        conversationId: string;
      };
      output: ConversationSummary;
      meta: object;
      errorShape: ErrorShape;
    }>;
    history: TRPCQueryProcedure<{
      input: {
        conversationId: string;
        beforeSeq?: number | undefined;
        afterSeq?: number | undefined;
        aroundSeq?: number | undefined;
        limit?: number | undefined;
      };
      output: {
        events: EventFrame[];
        lastSeq: number;
        epoch: number;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    readCursors: TRPCQueryProcedure<{
      input: {
        conversationId: string;
      };
      output: {
        [key: string]: number;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    markRead: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        seq: number;
      };
      output: {
        readSeq: number;
        unread: number;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    mute: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        until?: null | string | undefined;
      };
      output: {
        muted: boolean;
        mutedUntil: null | string;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
  messages: {
    search: TRPCQueryProcedure<{
      input: {
        query: string;
        conversationId?: string | undefined;
        order?: "recent" | "relevance" | undefined;
        cursor?: string | undefined;
        limit?: number | undefined;
      };
      output: {
        hits: SearchHit[];
        nextCursor: null | string;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
  account: {
    export: TRPCQueryProcedure<{
      input: void;
      output: {
        notifications: {
          settings: null | {
            userId: string;
            push: boolean;
            email: boolean;
            previews: boolean;
            quietStart: null | string;
            quietEnd: null | string;
            quietTz: null | string;
            updatedAt: Date;
          };
          conversations: {
            conversationId: string;
            level: "all" | "mentions" | "none";
          }[];
          pushSubscriptions: {
            endpoint: string;
            createdAt: Date;
          }[];
          webhooks: {
            id: string;
            url: string;
            createdAt: Date;
          }[];
          deliveries: {
            id: string;
            channel: "email" | "push" | "webhook";
            status: "failed" | "sending" | "sent";
            range: string;
            createdAt: Date;
          }[];
        };
        attachments?: undefined | unknown[];
        payments?: undefined | {};
        exportedAt: string;
        profile: {
          email: string;
          id: string;
          username: string;
          displayName: string;
          bio: string;
          avatarUrl: null | string;
          statusText: string;
          timezone: string;
          createdAt: string;
        };
        sessions: {
          id: string;
          createdAt: Date;
          lastUsedAt: Date;
          revokedAt: Date | null;
          userAgent: null | string;
          ip: null | string;
        }[];
        blocked: {
          userId: string;
          at: Date;
        }[];
        authEvents: {
          event: string;
          at: Date;
          ip: null | string;
        }[];
        conversations: {
          id: string;
          kind: "direct" | "group";
          title: null | string;
          topic: null | string;
          createdAt: string;
          role: "admin" | "member" | "owner";
          members: {
            userId: string;
            role: "admin" | "member" | "owner";
          }[];
          lastSeq: number;
          readSeq: number;
          unread: number;
          muted: boolean;
          mutedUntil: null | string;
        }[];
        messages: EventFrame[];
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    delete: TRPCMutationProcedure<{
      input: {
        password: string;
      };
      output: {
        ok: true;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
  payments: {
    balance: TRPCQueryProcedure<{
      input: void;
      output: {
        currency: string;
        balance: number;
        debt: number;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    history: TRPCQueryProcedure<{
      input: undefined | {
        cursor?: number | undefined;
        limit?: number | undefined;
      };
      output: {
        items: {
          conversationId?: string | undefined;
          counterparty?: string | undefined;
          transferId: string;
          kind: "grant" | "refund" | "refund_reversal" | "renewal" | "subscription" | "tip" | "topup";
          amount: number;
          ts: string;
        }[];
        nextCursor: null | number;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    createTopUp: TRPCMutationProcedure<{
      input: {
        amount: number;
        idempotencyKey?: string | undefined;
      };
      output: {
        paymentIntentId: string;
        clientSecret: string;
        amount: number;
        currency: string;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    tip: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        toUserId: string;
        amount: number;
        idempotencyKey: string;
        note?: string | undefined;
      };
      output: {
        transferId: string;
        balance: number;
        seq: number;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    plans: TRPCQueryProcedure<{
      input: void;
      output: {
        id: string;
        name: string;
        price: number;
        periodDays: number;
        limits: {
          sendRatePerS: number;
          sendBurst: number;
          connectionsPerUser: number;
          groupMembers: number;
          historyDepth: number;
          maxFileBytes: number;
          storageBytes: number;
        };
      }[];
      meta: object;
      errorShape: ErrorShape;
    }>;
    subscribe: TRPCMutationProcedure<{
      input: {
        planId: string;
        idempotencyKey: string;
      };
      output: Entitlement;
      meta: object;
      errorShape: ErrorShape;
    }>;
    cancel: TRPCMutationProcedure<{
      input: void;
      output: Entitlement;
      meta: object;
      errorShape: ErrorShape;
    }>;
    entitlements: TRPCQueryProcedure<{
      input: void;
      output: Entitlement;
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
  notifications: {
    vapidPublicKey: TRPCQueryProcedure<{
      input: void;
      output: {
        publicKey: null | string;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    registerPush: TRPCMutationProcedure<{
      input: {
        endpoint: string;
        keys: {
          p256dh: string;
          auth: string;
        };
      };
      output: {
        id: string;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    unregisterPush: TRPCMutationProcedure<{
      input: {
        endpoint: string;
      };
      output: {
        removed: boolean;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    settings: TRPCQueryProcedure<{
      input: void;
      output: SettingsView;
      meta: object;
      errorShape: ErrorShape;
    }>;
    updateSettings: TRPCMutationProcedure<{
      input: {
        push?: boolean | undefined;
        email?: boolean | undefined;
        previews?: boolean | undefined;
        quietHours?: null | undefined | {
          start: string;
          end: string;
          timezone: string;
        };
        conversations?: undefined | {
          [key: string]: "all" | "mentions" | "none";
        };
      };
      output: SettingsView;
      meta: object;
      errorShape: ErrorShape;
    }>;
    webhooks: {
      create: TRPCMutationProcedure<{
        input: {
          url: string;
        };
        output: {
          id: `${string}-${string}-${string}-${string}-${string}`;
          secret: string;
        };
        meta: object;
        errorShape: ErrorShape;
      }>;
      list: TRPCQueryProcedure<{
        input: void;
        output: {
          createdAt: string;
          pausedUntil: null | string;
          id: string;
          url: string;
        }[];
        meta: object;
        errorShape: ErrorShape;
      }>;
      delete: TRPCMutationProcedure<{
        input: {
          id: string;
        };
        output: {
          id: string;
        };
        meta: object;
        errorShape: ErrorShape;
      }>;
      rotateSecret: TRPCMutationProcedure<{
        input: {
          id: string;
        };
        output: {
          id: string;
          secret: string;
        };
        meta: object;
        errorShape: ErrorShape;
      }>;
    };
    deliveries: TRPCQueryProcedure<{
      input: undefined | {
        limit?: number | undefined;
      };
      output: {
        status: "failed" | "paused" | "sending" | "sent";
        pausedUntil: null | string;
        createdAt: string;
        finishedAt: null | string;
        id: string;
        channel: "email" | "push" | "webhook";
        target: string;
        conversationId: null | string;
        range: string;
        attempts: number;
        error: null | string;
      }[];
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
  attachments: {
    create: TRPCMutationProcedure<{
      input: {
        conversationId: string;
        name: string;
        size: number;
        contentType: string;
      };
      output: {
        id: `${string}-${string}-${string}-${string}-${string}`;
        upload: SignedRequest;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
    complete: TRPCMutationProcedure<{
      input: {
        id: string;
      };
      output: AttachmentMeta;
      meta: object;
      errorShape: ErrorShape;
    }>;
    get: TRPCQueryProcedure<{
      input: {
        id: string;
      };
      output: {
        expiresAt: string;
        thumbnailUrl?: string | undefined;
        url: string;
        id: string;
        name: string;
        size: number;
        contentType: string;
        width?: number | undefined;
        height?: number | undefined;
        preview?: string | undefined;
      };
      meta: object;
      errorShape: ErrorShape;
    }>;
  };
}>;

/** The `error.data`/shape of a failed call, as the hub formats it. */
export type ErrorShape = {
  data: {
    stack: undefined;
    zodIssues: ZodIssue[] | undefined;
    retryAfterMs: number | undefined;
    code: "BAD_GATEWAY" | "BAD_REQUEST" | "CLIENT_CLOSED_REQUEST" | "CONFLICT" | "FORBIDDEN" | "GATEWAY_TIMEOUT" | "INTERNAL_SERVER_ERROR" | "METHOD_NOT_SUPPORTED" | "NOT_FOUND" | "NOT_IMPLEMENTED" | "PARSE_ERROR" | "PAYLOAD_TOO_LARGE" | "PAYMENT_REQUIRED" | "PRECONDITION_FAILED" | "PRECONDITION_REQUIRED" | "SERVICE_UNAVAILABLE" | "TIMEOUT" | "TOO_MANY_REQUESTS" | "UNAUTHORIZED" | "UNPROCESSABLE_CONTENT" | "UNSUPPORTED_MEDIA_TYPE";
    httpStatus: number;
    path?: string | undefined;
  };
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
};

type AttachmentMeta = {
  id: string;
  name: string;
  size: number;
  contentType: string;
  width?: number | undefined;
  height?: number | undefined;
  preview?: string | undefined;
};

type ConversationSummary = {
  id: string;
  kind: "direct" | "group";
  title: null | string;
  topic: null | string;
  members: {
    userId: string;
    role: "admin" | "member" | "owner";
  }[];
  createdAt: string;
};

type Entitlement = {
  plan: string;
  until: null | string;
  autoRenew: boolean;
  limits: {
    sendRatePerS: number;
    sendBurst: number;
    connectionsPerUser: number;
    groupMembers: number;
    historyDepth: number;
    maxFileBytes: number;
    storageBytes: number;
  };
};

type EventFrame = {
  [key: string]: unknown;
  type: "event";
  conv: string;
  seq: number;
  kind: EventKind;
  id: string;
  from: null | string;
  ts: number;
  cid?: string | undefined;
  body?: null | string | undefined;
  replyTo?: number | undefined;
  mentions?: string[] | undefined;
  attachments?: AttachmentMeta[] | undefined;
  redacted?: boolean | undefined;
  target?: number | undefined;
  emoji?: string | undefined;
  on?: boolean | undefined;
  op?: "joined" | "left" | "removed" | undefined;
  users?: string[] | undefined;
  text?: string | undefined;
};

type EventKind = "delete" | "edit" | "member" | "message" | "reaction" | "system";

type Level = "all" | "mentions" | "none";

type Primitive = bigint | boolean | null | number | string | symbol | undefined;

type PublicProfile = {
  id: string;
  username: string;
  displayName: string;
  bio: string;
  avatarUrl: null | string;
  statusText: string;
  timezone: string;
  createdAt: string;
};

type QuietHours = {
  start: string;
  end: string;
  timezone: string;
};

type SearchHit = {
  conversationId: string;
  seq: number;
  id: string;
  from: null | string;
  ts: number;
  snippet: string;
};

type SettingsView = {
  push: boolean;
  email: boolean;
  previews: boolean;
  quietHours: QuietHours | null;
  conversations: {
    [key: string]: Level;
  };
  emailAvailable: boolean;
};

type SignedRequest = {
  url: string;
  method: "PUT";
  headers: {
    [key: string]: string;
  };
};

type TRPC_ERROR_CODE_NUMBER = -32001 | -32002 | -32003 | -32004 | -32005 | -32008 | -32009 | -32012 | -32013 | -32015 | -32022 | -32028 | -32029 | -32099 | -32600 | -32603 | -32700;

type ZodInvalidTypeExpected = "array" | "bigint" | "boolean" | "date" | "file" | "function" | "int" | "map" | "nan" | "never" | "nonoptional" | "null" | "number" | "object" | "record" | "set" | "string" | "symbol" | "tuple" | "undefined" | "void" | string & {};

type ZodIssue = ZodIssueCustom | ZodIssueInvalidElement | ZodIssueInvalidKey | ZodIssueInvalidStringFormat | ZodIssueInvalidType | ZodIssueInvalidUnionMultipleMatch | ZodIssueInvalidUnionNoMatch | ZodIssueInvalidValue | ZodIssueNotMultipleOf | ZodIssueTooBig | ZodIssueTooSmall | ZodIssueUnrecognizedKeys;

type ZodIssueCustom = {
  code: "custom";
  params?: undefined | {
    [key: string]: any;
  };
  input?: unknown;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueInvalidElement = {
  code: "invalid_element";
  origin: "map" | "set";
  key: unknown;
  issues: ZodIssue[];
  input?: unknown;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueInvalidKey = {
  code: "invalid_key";
  origin: "map" | "record";
  issues: ZodIssue[];
  input?: unknown;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueInvalidStringFormat = {
  code: "invalid_format";
  format: "base64" | "base64url" | "cidrv4" | "cidrv6" | "credit_card" | "cuid" | "cuid2" | "date" | "datetime" | "duration" | "e164" | "email" | "emoji" | "ends_with" | "guid" | "iban" | "includes" | "ipv4" | "ipv6" | "json_string" | "jwt" | "ksuid" | "lowercase" | "nanoid" | "regex" | "starts_with" | "time" | "ulid" | "uppercase" | "url" | "uuid" | "xid" | string & {};
  pattern?: string | undefined;
  input?: string | undefined;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueInvalidType = {
  code: "invalid_type";
  expected: ZodInvalidTypeExpected;
  input?: unknown;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueInvalidUnionMultipleMatch = {
  code: "invalid_union";
  errors: [];
  input?: unknown;
  discriminator?: string | undefined;
  inclusive: false;
  matches: number[];
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueInvalidUnionNoMatch = {
  code: "invalid_union";
  errors: ZodIssue[][];
  input?: unknown;
  discriminator?: string | undefined;
  options?: Primitive[] | undefined;
  inclusive?: true | undefined;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueInvalidValue = {
  code: "invalid_value";
  values: Primitive[];
  input?: unknown;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueNotMultipleOf = {
  code: "not_multiple_of";
  divisor: number;
  input?: bigint | number | undefined;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueTooBig = {
  code: "too_big";
  origin: "array" | "bigint" | "date" | "file" | "int" | "number" | "set" | "string" | string & {};
  maximum: bigint | number;
  inclusive?: boolean | undefined;
  exact?: boolean | undefined;
  input?: unknown;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueTooSmall = {
  code: "too_small";
  origin: "array" | "bigint" | "date" | "file" | "int" | "number" | "set" | "string" | string & {};
  minimum: bigint | number;
  inclusive?: boolean | undefined;
  exact?: boolean | undefined;
  input?: unknown;
  path: (number | string | symbol)[];
  message: string;
};

type ZodIssueUnrecognizedKeys = {
  code: "unrecognized_keys";
  keys: string[];
  input?: undefined | {
    [key: string]: unknown;
  };
  path: (number | string | symbol)[];
  message: string;
};
