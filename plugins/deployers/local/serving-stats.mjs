// What the router measures of each revision's traffic, for the control plane's serving observations (a rollout's
// gates, monitors): requests answered, how many were errors (a 5xx from the model, or no whole answer from it: the
// router's 502 or a connection cut mid-answer), and a latency histogram, all counted since the router started
// (`epoch`), as Prometheus counters are; the reader takes differences. A request costs two increments and a log.
// Latency is from the request's bytes reaching the router to the answer's last byte leaving it.

/** Bucket i holds latencies up to FIRST_MS × GROWTH^i (the last bucket, everything above): 0.1 ms to ~3.5 min. */
export const FIRST_MS = 0.1;
export const GROWTH = 1.25;
export const BUCKETS = 66;
const LOG_GROWTH = Math.log(GROWTH);

export function createServingStats() {
  const epoch = `${process.pid}-${Date.now()}`;
  const revisions = new Map(); // revision → { requests, errors, buckets }
  return {
    /** One request answered by `rev` with status `code` (502: no whole answer) in `ms`. */
    record(rev, code, ms) {
      let s = revisions.get(rev);
      if (!s) revisions.set(rev, (s = { requests: 0, errors: 0, buckets: new Array(BUCKETS).fill(0) }));
      s.requests++;
      if (code >= 500) s.errors++;
      const i = ms <= FIRST_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / FIRST_MS) / LOG_GROWTH));
      s.buckets[i]++;
    },
    /** The counters as JSON: { epoch, firstMs, growth, revisions: { [rev]: { requests, errors, buckets } } }. */
    toJSON() {
      return { epoch, firstMs: FIRST_MS, growth: GROWTH, revisions: Object.fromEntries(revisions) };
    },
  };
}
