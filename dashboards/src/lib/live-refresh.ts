// A page whose query shows state (deployments, executor hosts) kept fresh by a live subscription instead of a timer:
// each event asks the query again (a burst of events is one request), and so does the subscription's first event
// (it listens from there on) and a reconnect (what came meanwhile is gone). Nothing polls while the live connection
// is up; while it is down the page says so and asks every fallbackPollMs() until it is back.
import type { AnyVariables, DocumentInput } from '@urql/core';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LiveState } from '../api/client';
import { useSession } from '../session';
import { useThrottled } from './hooks';
import { useLiveFeed } from './live-feed';
import { serverSettings } from './server-settings';

/** How often a page asks again while live updates are down, unless the operator set ATELIER_FALLBACK_POLL_MS. */
export const FALLBACK_POLL_MS = 30_000;
/** This browser's `atelier-fallback-poll-ms` local-storage key, else the operator's setting, else FALLBACK_POLL_MS. */
export const fallbackPollMs = (): number =>
  Number(localStorage.getItem('atelier-fallback-poll-ms')) || Number(serverSettings().fallbackPollMs) || FALLBACK_POLL_MS;

/** How long a connection may take to come up before the page says live updates are down. */
const GRACE_MS = 3_000;
/** Events closer together than this are one request. */
const COALESCE_MS = 250;

/**
 * Follows `subscription` while `enabled`, calling `refresh` as above; returns whether live updates are down (the page
 * shows LiveDownBanner).
 */
export function useLiveRefresh<Data, Variables extends AnyVariables>(
  subscription: DocumentInput<Data, Variables>,
  variables: Variables,
  refresh: () => void,
  deps: unknown[],
  enabled = true,
): LiveDown {
  const again = useThrottled(refresh, COALESCE_MS);
  useLiveFeed(subscription, variables, again, again, deps, enabled);
  return useLiveDown(refresh, enabled);
}

export interface LiveDown {
  down: boolean;
  pollMs: number;
}

/**
 * Whether the live connection a page needs is down (not up within GRACE_MS, or lost); meanwhile `refresh` is called
 * every fallbackPollMs() while the page is visible.
 */
export function useLiveDown(refresh: () => void, enabled = true): LiveDown {
  const { api } = useSession();
  const [down, setDown] = useState(false);
  useEffect(() => {
    if (!enabled) return;
    let grace: ReturnType<typeof setTimeout> | undefined;
    const follow = (state: LiveState) => {
      clearTimeout(grace);
      if (state === 'live') setDown(false);
      else if (state === 'offline') setDown(true);
      else grace = setTimeout(() => setDown(api.liveState() !== 'live'), GRACE_MS);
    };
    follow(api.liveState());
    const stop = api.onLiveState(follow);
    return () => {
      clearTimeout(grace);
      stop();
      setDown(false);
    };
  }, [api, enabled]);
  const pollMs = fallbackPollMs();
  const latest = useRef(refresh);
  latest.current = refresh;
  useEffect(() => {
    if (!down || !enabled) return;
    const timer = setInterval(() => document.visibilityState === 'visible' && latest.current(), pollMs);
    return () => clearInterval(timer);
  }, [down, enabled, pollMs]);
  return { down: down && enabled, pollMs };
}
