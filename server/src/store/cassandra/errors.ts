/** The store could not complete an operation; appends that throw it are safe to retry with the same cids. */
export class MessageStoreUnavailableError extends Error {
  override name = 'MessageStoreUnavailableError';
}
