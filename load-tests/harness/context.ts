/** What the runner gives every scenario's drive. */
import type { PostgresHandle } from '../../test/helpers/postgres.ts';
import type { RedisHandle } from '../../test/helpers/redis.ts';
import type { Sizes } from '../scenarios.ts';
import type { Watched } from './procs.ts';
import type { ScenarioResult } from './report.ts';
import type { SeedFile } from './seed.ts';

export type { Sizes };
export interface Ctx {
  /** The table's sizes in this run's mode, with `--set`. */
  sizes: Sizes;
  quick: boolean;
  pg: PostgresHandle;
  redis: RedisHandle;
  /** The bench's database (migrated) and the seed in it, with the JWT secret its tokens are signed with. */
  databaseUrl: string;
  seed: SeedFile;
  seedFile: string;
  jwtSecret: string;
  /** The hubs' environment (hubEnv()). */
  hubBase: Record<string, string>;
  /** PostgreSQL and Redis, sampled beside the servers. */
  backing: Watched[];
  work: string;
  /** Whether a scenario runs in this bench. */
  wants(name: string): boolean;
  migrate(databaseUrl: string): Promise<void>;
  record(s: ScenarioResult): void;
  /** Runs when the scenario ends, or when the bench is interrupted. */
  cleanup(f: () => Promise<unknown>): void;
  log(s: string): void;
}
