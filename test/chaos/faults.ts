// The fault schedule: from a seed, which fault happens when and to which process, so two runs with one seed
// inject the same faults in the same order at the same offsets (what the system does in between still varies).

export const faultKinds = ['kill-control-plane', 'kill-executor-host', 'nats-sigterm', 'nats-sigkill', 'postgres-fast-restart', 'postgres-sigkill'] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface Fault {
  /** Offset from the start of the chaos phase, ms. */
  at: number;
  kind: FaultKind;
  /** Which of the two control planes or hosts (0 or 1); unused for nats and Postgres. */
  target: number;
  /** How long the process stays down before it is started again, ms. */
  downMs: number;
}

/** mulberry32: a small, fast, seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Processes die more often than servers restart: weights of the kinds after each has happened once.
const WEIGHTS: Record<FaultKind, number> = {
  'kill-control-plane': 4,
  'kill-executor-host': 4,
  'nats-sigterm': 1,
  'nats-sigkill': 1,
  'postgres-fast-restart': 1,
  'postgres-sigkill': 1,
};

/**
 * `count` faults over `durationMs`, one per equal slot at a random point of its first 70 % (so a slow recovery
 * rarely pushes the next one back). The first ones are every kind once, in a random order, so even a short run
 * injects each kind.
 */
export function faultSchedule(seed: number, durationMs: number, count: number): Fault[] {
  const random = seededRandom(seed);
  const first = [...faultKinds];
  for (let i = first.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [first[i], first[j]] = [first[j]!, first[i]!];
  }
  const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
  const weighted = (): FaultKind => {
    let r = random() * total;
    for (const kind of faultKinds) {
      r -= WEIGHTS[kind];
      if (r < 0) return kind;
    }
    return faultKinds[0];
  };
  const slot = durationMs / Math.max(1, count);
  return Array.from({ length: count }, (_, i) => {
    const kind = i < first.length ? first[i]! : weighted();
    return {
      at: Math.round(i * slot + random() * slot * 0.7),
      kind,
      target: random() < 0.5 ? 0 : 1,
      downMs: Math.round(kind.startsWith('postgres') || kind.startsWith('nats') ? 300 + random() * 1_500 : random() * 1_000),
    };
  });
}
