// The live feed's broadcast over core NATS: every replica's events to every replica. Each message carries this bus's
// origin in a header, so a replica that delivers its own events itself (server/events/feed.ts) drops their echo
// unread; a replica that reads no header (an older one) takes the message as before.
import { randomUUID } from 'node:crypto';
import { headers, type NatsConnection, type Subscription as NatsSubscription } from '@nats-io/transport-node';
import { DEFAULT_MAX_PAYLOAD_BYTES, packWithin } from '../../plugins/bus/payload-limit';
import type { Bus, Subscription } from '../../plugins/bus/types';

const ORIGIN_HEADER = 'Atelier-Origin';

export interface FeedWire {
  nc: NatsConnection;
  subject: string;
  /** Told after a reconnect (the bus's own set): what core NATS carried meanwhile is gone. */
  resyncs: Set<() => void>;
  track(sub: NatsSubscription): Promise<Subscription>;
  assertOpen(): void;
  isClosed(): boolean;
}

export function feedMethods({ nc, subject, resyncs, track, assertOpen, isClosed }: FeedWire): Pick<Bus, 'publishFeed' | 'subscribeFeed'> {
  const origin = randomUUID();
  const stamp = headers();
  stamp.set(ORIGIN_HEADER, origin);
  // The server counts headers in max_payload: the events get what the header block (as NATS writes it) leaves.
  const stampBytes = Buffer.byteLength(`NATS/1.0\r\n${ORIGIN_HEADER}: ${origin}\r\n\r\n`);
  return {
    publishFeed(events, tooLarge) {
      if (isClosed()) return;
      // Split to fit the server's max_payload (a 10,000-task run's statuses do not fit one message).
      for (const message of packWithin(events, (nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES) - stampBytes, tooLarge)) {
        try {
          nc.publish(subject, message, { headers: stamp });
        } catch {
          // Best effort, after a commit: what is lost is read from the store by the feed's checks.
        }
      }
    },

    async subscribeFeed(handler, onResync, wanted, options) {
      assertOpen();
      const ownMessages = options?.ownMessages ?? true;
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return;
          if (!ownMessages && msg.headers?.get(ORIGIN_HEADER) === origin) return;
          if (wanted && !wanted()) return;
          let events: unknown[];
          try {
            events = msg.json<unknown[]>();
          } catch {
            return;
          }
          try {
            handler(events);
          } catch {
            // A failing handler must not take the subscription down.
          }
        },
      });
      const subscription = await track(sub);
      if (!onResync) return subscription;
      const resync = () => onResync();
      resyncs.add(resync);
      return {
        async stop() {
          resyncs.delete(resync);
          await subscription.stop();
        },
      };
    },
  };
}
