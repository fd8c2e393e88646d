import type { Config } from '../config.ts';
import { Hub, type HubDeps, type HubLimits } from '../hub/hub.ts';
import { alsoIndexing } from '../search/open-search.ts';
import type { SearchIndexer } from '../search/message-search.ts';

/** The hub's limits and timings, from the config. */
export function hubLimits(config: Config): HubLimits {
  return {
    maxBodyChars: config.WS_MAX_BODY_CHARS,
    ratePerS: config.WS_RATE_PER_S,
    burst: config.WS_RATE_BURST,
    maxConnectionsPerUser: config.WS_MAX_CONNECTIONS_PER_USER,
    heartbeatMs: config.WS_HEARTBEAT_MS,
    maxBuffered: config.WS_MAX_BACKPRESSURE_BYTES,
    resumeMaxEvents: config.WS_RESUME_MAX_EVENTS,
    resumeHoldMs: config.WS_RESUME_HOLD_MS,
    announcedResumeHoldMs: config.WS_RESUME_ANNOUNCED_HOLD_MS,
    presenceGraceMs: config.PRESENCE_OFFLINE_GRACE_MS,
  };
}

/**
 * The hub on its ports; notification triggers only when NOTIFY_ENABLED. Indexing for search
 * hangs on the same after-append hook, beside the trigger: off the ack path.
 */
export function buildHub(config: Config, d: Omit<HubDeps, 'limits'> & { indexer: SearchIndexer }): Hub {
  const { indexer, ...deps } = d;
  return new Hub({ ...deps, notify: alsoIndexing(config.NOTIFY_ENABLED ? d.notify : undefined, indexer), limits: hubLimits(config) });
}
