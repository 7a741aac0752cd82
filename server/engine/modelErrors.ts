/** The model cannot be started; the message is meant for the person starting the server (exit 1). */
export class ModelStartError extends Error {
  override name = 'ModelStartError';
}

/** The model could not be found or fetched. */
export class ModelNotFoundError extends ModelStartError {
  override name = 'ModelNotFoundError';
}

/** A downloaded file is not the one the hub announced (size or sha256); it was deleted, never used. */
export class DownloadMismatchError extends ModelStartError {
  override name = 'DownloadMismatchError';
}

/** The model does not fit this machine's free memory; the message names what to lower. */
export class NotEnoughMemoryError extends ModelStartError {
  override name = 'NotEnoughMemoryError';
}
