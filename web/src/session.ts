import { createApiClient, type ApiClient } from '@hubbub/client';
import { w } from './words.ts';

/**
 * The signed-in session. Both tokens are kept in localStorage so a reload (or a second tab)
 * stays signed in; the access token lives 15 minutes, the refresh token rotates at every use
 * through `auth.refresh`. localStorage rather than an httpOnly cookie because the hub's API takes
 * bearer tokens only; the page runs no third-party script, which is what would make that a risk.
 */
export interface Me {
  id: string;
  username: string;
  displayName: string;
  avatarUrl: string | null;
}

interface Stored {
  accessToken: string;
  refreshToken: string;
  user: Me;
}

const KEY = 'hubbub.session';

export class Session {
  private stored: Stored | null = null;
  private refreshing: Promise<string> | null = null;
  /** Calls the API with the current access token, refreshing it when it is about to expire. */
  readonly api: ApiClient;
  /** Calls that need no token (sign in, sign up, refresh). */
  readonly anon: ApiClient;

  constructor(base = location.origin) {
    this.anon = createApiClient({ url: `${base}/trpc` });
    this.api = createApiClient({ url: `${base}/trpc`, getToken: (req) => (req.refresh ? this.refresh() : this.accessToken()) });
    try {
      this.stored = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Stored | null;
    } catch {
      this.stored = null;
    }
  }

  get user(): Me | null {
    return this.stored?.user ?? null;
  }

  signedIn() {
    return this.stored !== null;
  }

  save(r: { accessToken: string; refreshToken: string; user: Me }) {
    this.stored = { accessToken: r.accessToken, refreshToken: r.refreshToken, user: pickMe(r.user) };
    localStorage.setItem(KEY, JSON.stringify(this.stored));
  }

  clear() {
    this.stored = null;
    localStorage.removeItem(KEY);
  }

  /** A valid access token: the stored one, or a fresh one from `auth.refresh` when it expires within 30 s. */
  async accessToken(): Promise<string> {
    const s = this.stored;
    if (!s) throw new Error(w.signedOut);
    if (expiresAt(s.accessToken) - Date.now() > 30_000) return s.accessToken;
    return this.refresh();
  }

  /** Rotates the refresh token (once at a time, and once across tabs through a Web Lock). */
  refresh(): Promise<string> {
    this.refreshing ??= this.rotate().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async rotate(): Promise<string> {
    const run = async () => {
      // Another tab may have rotated while we waited for the lock: use its tokens.
      const latest = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Stored | null;
      if (latest && latest.refreshToken !== this.stored?.refreshToken && expiresAt(latest.accessToken) - Date.now() > 30_000) {
        this.stored = latest;
        return latest.accessToken;
      }
      const token = latest?.refreshToken ?? this.stored?.refreshToken;
      if (!token) throw new Error(w.signedOut);
      try {
        const r = await this.anon.auth.refresh.mutate({ refreshToken: token });
        this.save(r);
        return r.accessToken;
      } catch (err) {
        const code = (err as { data?: { code?: string } }).data?.code;
        if (code === 'UNAUTHORIZED') this.clear();
        throw err;
      }
    };
    return navigator.locks ? navigator.locks.request('hubbub.refresh', run) : run();
  }

  async logout() {
    const t = this.stored?.refreshToken;
    this.clear();
    if (t) await this.anon.auth.logout.mutate({ refreshToken: t }).catch(() => {});
  }
}

function pickMe(u: Me): Me {
  return { id: u.id, username: u.username, displayName: u.displayName, avatarUrl: u.avatarUrl ?? null };
}

/** The `exp` of a JWT in ms (0 when unreadable, which forces a refresh). */
function expiresAt(jwt: string): number {
  try {
    const payload = JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number };
    return (payload.exp ?? 0) * 1000;
  } catch {
    return 0;
  }
}
