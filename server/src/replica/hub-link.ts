import type { Hub } from '../hub/hub.ts';
import type { UserControl } from '../hub/ports.ts';
import type { EventDraft } from '../store/message-store.ts';

/**
 * The hub as the services reach it. The services are built before the hub (the hub reads
 * memberships and plans from them), and the hub before the services call it: the link is made
 * first and bound to the hub once it exists. A call before that is a wiring bug and rejects.
 */
export class HubLink {
  private hub: Hub | null = null;

  bind(hub: Hub) {
    this.hub = hub;
  }

  private get bound(): Hub {
    if (!this.hub) throw new Error('the hub is called before it was built');
    return this.hub;
  }

  write = async (conv: string, draft: EventDraft) => this.bound.writer.write(conv, draft);
  controlUser = async (userId: string, msg: UserControl) => this.bound.controlUser(userId, msg);
  controlUsers = async (userIds: string[], msg: UserControl) => this.bound.controlUsers(userIds, msg);
  publishFrame = async (conv: string, frame: string, skipUser?: string) => this.bound.publishFrame(conv, frame, skipUser);
}
