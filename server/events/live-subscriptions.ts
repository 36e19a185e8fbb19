// Every live subscription (graphql-ws or SSE) holds a slot here from the moment it is set up until it ends, however
// it ends: the client completed it or went away, the server ended it (run over, token revoked), or the app stops.
// Its abort signal and its timers belong to the slot, so ending it lets go of everything at once. Each token, and
// the replica as a whole, may hold only so many slots; past that a new subscription is refused, naming the limit.
import { AtelierError } from '../errors';

export interface LiveSubscription {
  /** Aborted when the subscription ends: whatever it listens to stops listening. */
  readonly signal: AbortSignal;
  /** Runs `tick` every `ms` while the subscription lives (not at all once it ended); its timer ends with it. */
  every(ms: number, tick: () => void): void;
  /**
   * Joins the check named `key` (one per token, say): one timer runs `check` every `ms` for all the live
   * subscriptions that joined it, and each gets the outcome through its own `each` (a check that throws is retried at
   * the next tick). Leaving is automatic when the subscription ends; the timer stops when the last one has left.
   */
  join<T>(key: string, ms: number, check: () => Promise<T>, each: (outcome: T) => void): void;
  /** Ends it: aborts the signal, clears its timers, frees its slot. Idempotent. */
  end(): void;
}

export interface LiveSubscriptions {
  /** Takes a slot for a subscription of `token`; throws TOO_MANY_SUBSCRIPTIONS past either limit. */
  open(token: string): LiveSubscription;
  /** How many are live now (tests and operators: zero once every client left). */
  count(): number;
  /** How many `token` holds now. */
  countFor(token: string): number;
  /** How many timers the live ones run now (a check joined by several counts once). */
  timerCount(): number;
  /**
   * Runs now, out of turn, every joined check whose key `matches` (a token changed: its subscriptions need not wait);
   * resolves once each has handed its outcome to its members.
   */
  checkNow(matches: (key: string) => boolean): Promise<void>;
  /** Ends every live one (the app stopping). */
  endAll(): void;
}

export interface LiveSubscriptionLimits {
  perToken: number;
  total: number;
}

export function createLiveSubscriptions(limits: LiveSubscriptionLimits): LiveSubscriptions {
  const live = new Set<LiveSubscription>();
  const perToken = new Map<string, number>();
  let timers = 0;
  /** Shared checks by key: one timer, one `check` per tick, its outcome handed to every member. */
  const checks = new Map<string, { timer: NodeJS.Timeout; members: Map<LiveSubscription, (outcome: unknown) => void>; run: () => Promise<void> }>();
  const leave = (key: string, subscription: LiveSubscription) => {
    const group = checks.get(key);
    if (!group?.members.delete(subscription) || group.members.size) return;
    clearInterval(group.timer);
    checks.delete(key);
    timers--;
  };

  const refuse = (message: string, variable: string, limit: number) =>
    new AtelierError('TOO_MANY_SUBSCRIPTIONS', message, [{ path: variable, message: `at most ${limit} live subscriptions` }]);

  return {
    open(token) {
      const held = perToken.get(token) ?? 0;
      if (held >= limits.perToken)
        throw refuse(
          `This token holds ${held} subscriptions already, the most one token may (ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN=${limits.perToken}): close one you no longer watch, or ask the operator to raise ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN.`,
          'ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN',
          limits.perToken,
        );
      if (live.size >= limits.total)
        throw refuse(
          `The server holds ${live.size} subscriptions already, the most it may (ATELIER_MAX_SUBSCRIPTIONS=${limits.total}): try again later, or ask the operator to raise ATELIER_MAX_SUBSCRIPTIONS.`,
          'ATELIER_MAX_SUBSCRIPTIONS',
          limits.total,
        );
      const abort = new AbortController();
      const intervals: NodeJS.Timeout[] = [];
      const joined = new Set<string>();
      const subscription: LiveSubscription = {
        signal: abort.signal,
        every(ms, tick) {
          if (abort.signal.aborted) return;
          const timer = setInterval(tick, ms);
          timer.unref();
          intervals.push(timer);
          timers++;
        },
        join(key, ms, check, each) {
          if (abort.signal.aborted) return;
          let group = checks.get(key);
          if (!group) {
            const members = new Map<LiveSubscription, (outcome: unknown) => void>();
            const run = () =>
              check().then(
                (outcome) => {
                  for (const member of [...members.values()]) {
                    try {
                      member(outcome);
                    } catch {
                      // one member's failure must not keep the outcome from the others
                    }
                  }
                },
                () => undefined, // retried at the next tick
              );
            const created = { members, run, timer: setInterval(() => void run(), ms) };
            created.timer.unref();
            checks.set(key, (group = created));
            timers++;
          }
          group.members.set(subscription, each as (outcome: unknown) => void);
          joined.add(key);
        },
        end() {
          if (!live.delete(subscription)) return;
          for (const key of joined) leave(key, subscription);
          joined.clear();
          const left = (perToken.get(token) ?? 1) - 1;
          if (left > 0) perToken.set(token, left);
          else perToken.delete(token);
          for (const timer of intervals) clearInterval(timer);
          timers -= intervals.length;
          intervals.length = 0;
          abort.abort();
        },
      };
      live.add(subscription);
      perToken.set(token, held + 1);
      return subscription;
    },
    count: () => live.size,
    countFor: (token) => perToken.get(token) ?? 0,
    timerCount: () => timers,
    async checkNow(matches) {
      await Promise.all([...checks].filter(([key]) => matches(key)).map(([, group]) => group.run()));
    },
    endAll() {
      for (const subscription of [...live]) subscription.end();
    },
  };
}
