// How much memory the uploads in progress may hold together. A file upload is held whole in memory while it is
// read (yoga's multipart parser keeps each file's chunks; an MLflow artifact is read into one buffer), each up to
// ATELIER_MAX_UPLOAD_MB: with no bound on how many run at once, a few dozen at the limit took the process past its
// memory. Each upload reserves what it may hold (its declared length, or the whole limit when sent chunked) before
// its body is read, and gives it back when answered; one that does not fit is refused with 503 and Retry-After,
// which MLflow's client and a browser's retry take as "again shortly".
import { RetryLater } from '../errors';

/** Uploads of the largest size this many at once; smaller ones more. */
export const UPLOADS_AT_THE_LIMIT = 4;
/** Seconds a refused upload is told to wait. */
export const UPLOAD_RETRY_AFTER_S = 5;

export interface UploadBudget {
  /** Reserves `bytes`; returns the release (idempotent), or throws TOO_MANY_UPLOADS when they do not fit. */
  reserve(bytes: number): () => void;
}

/** `what` names what is being received, in the refusal's message. */
export function createUploadBudget(totalBytes: number, what = 'uploads'): UploadBudget {
  let held = 0;
  return {
    reserve(bytes) {
      // One upload alone always fits (the per-upload limit decides its size), however large.
      if (held > 0 && held + bytes > totalBytes)
        throw new RetryLater(
          'TOO_MANY_UPLOADS',
          `The server is receiving as many ${what} as it holds at once; retry in ${UPLOAD_RETRY_AFTER_S} s (Retry-After).`,
          UPLOAD_RETRY_AFTER_S,
        );
      held += bytes;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        held -= bytes;
      };
    },
  };
}

/** What an upload with this request's headers may come to hold: its declared length, else the whole limit. */
export function uploadReservation(contentLength: string | undefined, limit: number): number {
  const declared = Number(contentLength);
  return contentLength !== undefined && Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, limit) : limit;
}
