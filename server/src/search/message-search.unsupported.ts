import { DomainError } from '../errors.ts';
import type { MessageSearch, SearchIndexer, SearchPage } from './message-search.ts';

/**
 * Search where the message store cannot search (MESSAGE_STORE=cassandra): every search is
 * refused with PRECONDITION_FAILED and a message saying why. Nothing is indexed, and nothing is
 * scanned and filtered here instead.
 */
export class UnsupportedMessageSearch implements MessageSearch {
  constructor(private readonly why: string) {}

  async search(): Promise<SearchPage> {
    throw new DomainError('PRECONDITION_FAILED', this.why);
  }

  async eraseSender(): Promise<void> {
    // Nothing was indexed, so there is nothing to erase.
  }
}

export const noIndexer: SearchIndexer = {
  appended() {},
  flush: async () => {},
  close: async () => {},
};
