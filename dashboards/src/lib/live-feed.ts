// A live-only subscription (no snapshot and no resume, as allRunEvents) kept listening for as long as the page shows.
// What it misses while it does not listen cannot be sent again: so when it ends with an error it can outlive
// (SUBSCRIBER_TOO_SLOW: the page fell behind and missed events; the server restarting) or the live connection comes
// back after it was lost, the page reads its state anew (`onGap`) and listens again, instead of staying silently stale.
import type { AnyVariables, CombinedError, DocumentInput } from '@urql/core';
import { useClient } from '@urql/preact';
import { useEffect, useRef } from 'preact/hooks';
import { useSession } from '../session';

/** Ends that listening again cannot mend: the session is over (the app signs out) or the caller may not read it. */
const FINAL = new Set(['UNAUTHENTICATED', 'FORBIDDEN']);
/** How long after an end it listens again. */
const AGAIN_MS = 1_000;

const isFinal = (error: CombinedError) => error.graphQLErrors.some((e) => FINAL.has(String(e.extensions?.code)));

export function useLiveFeed<Data, Variables extends AnyVariables>(
  query: DocumentInput<Data, Variables>,
  variables: Variables,
  onData: (data: Data) => void,
  onGap: () => void,
  deps: unknown[],
  /** False: not listening (a page that needs it only sometimes). */
  enabled = true,
): void {
  const client = useClient();
  const { api } = useSession();
  const handlers = useRef({ onData, onGap });
  handlers.current = { onData, onGap };
  useEffect(() => {
    if (!enabled) return;
    let subscription: { unsubscribe(): void } | undefined;
    let again: ReturnType<typeof setTimeout> | undefined;
    const listen = () => {
      subscription = client.subscription(query, variables).subscribe((result) => {
        // An end's result carries the last event's data beside its error (urql merges them): the error decides.
        if (!result.error) return result.data && handlers.current.onData(result.data);
        if (isFinal(result.error)) return;
        subscription?.unsubscribe();
        clearTimeout(again);
        again = setTimeout(() => {
          handlers.current.onGap();
          listen();
        }, AGAIN_MS);
      });
    };
    listen();
    // graphql-ws subscribes again by itself after a reconnect, but what came meanwhile is gone.
    let wasLive = api.liveState() === 'live';
    let lost = false;
    const stopWatching = api.onLiveState((state) => {
      if (state === 'connecting' && wasLive) lost = true;
      else if (state === 'live') {
        wasLive = true;
        if (lost) handlers.current.onGap();
        lost = false;
      }
    });
    return () => {
      stopWatching();
      clearTimeout(again);
      subscription?.unsubscribe();
    };
  }, [client, api, enabled, ...deps]);
}
