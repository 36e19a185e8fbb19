// The run feed's NATS side as a lifecycle service: this replica's live subscribers see what every replica recorded.
import type { Bus, Subscription } from '../../plugins/bus/types';
import type { Service } from '../lifecycle';
import type { createRunFeed, FeedEvent, StoredEventRef } from './feed';

/**
 * With NATS, this replica's subscribers see the live events every replica recorded; after the connection comes
 * back, every watched run is compared with the database at once, since what NATS carried meanwhile is lost.
 */
export function feedFromBus(bus: Bus, feed: ReturnType<typeof createRunFeed>): Service {
  let subscription: Subscription | undefined;
  return {
    name: 'run feed',
    async start() {
      subscription = await bus.subscribeFeed(
        (events) => feed.deliver(events as (FeedEvent | StoredEventRef)[]),
        () => void feed.check(true).catch(() => undefined), // the periodic check tries again
        // With no listener here, delivering changes nothing (the feed keeps arrivals only for watched runs).
        () => feed.listenerCount() > 0,
      );
    },
    stop: () => subscription?.stop(),
  };
}
