/** What the runner gives every scenario's drive, and the sizes `--set` may change. */
import type { PostgresHandle } from '../../test/helpers/postgres.ts';
import type { RedisHandle } from '../../test/helpers/redis.ts';
import type { openPgStats } from './diagnostics.ts';
import type { Watched } from './procs.ts';
import type { ScenarioResult } from './report.ts';
import type { SeedFile } from './seed.ts';

/** What a drive gets from the runner. */
export interface Ctx {
  sizes: Sizes;
  quick: boolean;
  pg: PostgresHandle;
  redis: RedisHandle;
  /** The bench's database (migrated) and the seed in it, with the JWT secret its tokens are signed with. */
  databaseUrl: string;
  seed: SeedFile;
  seedFile: string;
  jwtSecret: string;
  /** The hubs' environment: hubEnv() and --hub-env. */
  hubBase: Record<string, string>;
  /** PostgreSQL and Redis, sampled beside the servers. */
  backing: Watched[];
  work: string;
  pgStats: Awaited<ReturnType<typeof openPgStats>> | null;
  /** Whether a scenario runs in this bench. */
  wants(name: string): boolean;
  migrate(databaseUrl: string): Promise<void>;
  record(s: ScenarioResult): void;
  /** Runs when the scenario ends, or when the bench is interrupted. */
  cleanup(f: () => Promise<unknown>): void;
  log(s: string): void;
}

/** Every size of the table: what `--set` may change. */
export type Sizes = Record<
  | 'fanoutUsers'
  | 'roomSize'
  | 'persistUsers'
  | 'genProcs'
  | 'bodySize'
  | 'drainS'
  | 'connectTimeoutS'
  | 'resumeTimeoutS'
  | 'handshakeTimeoutMs'
  | 'fanoutRate'
  | 'connectN'
  | 'holdS'
  | 'fanoutS'
  | 'loginRate'
  | 'apiS'
  | 'historyRate'
  | 'reconnectRooms'
  | 'persistWindow'
  | 'persistS'
  | 'storeProducers'
  | 'storeConvs'
  | 'storeS'
  | 'connScaleTarget'
  | 'connScaleStep'
  | 'connScaleWorkers'
  | 'soakMinutes'
  | 'soakUsers'
  | 'soakSockets'
  | 'soakSendRate'
  | 'soakCallRate'
  | 'soakLoginRate'
  | 'soakSampleS'
  | 'notifyRooms'
  | 'notifySize'
  | 'notifyRate'
  | 'notifyS'
  | 'notifyDelayMs'
  | 'paymentsPayers'
  | 'paymentsPer'
  | 'framesCount'
  | 'framesRounds',
  number
>;
