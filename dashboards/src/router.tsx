// Client-side routing over the History API: real paths (the server answers index.html for them), links that
// stay in the app, and the query string for page state worth sharing (filters, the selected task).
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set<() => void>();
const notify = () => {
  for (const listener of listeners) listener();
};
window.addEventListener('popstate', notify);

export function navigate(to: string, options: { replace?: boolean } = {}) {
  if (to === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  notify();
}

export interface Location {
  path: string;
  query: URLSearchParams;
}

export function useLocation(): Location {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** Replaces some query parameters (empty values are removed) and navigates there. */
export function withQuery(changes: Record<string, string | null | undefined>): string {
  const query = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === '') query.delete(key);
    else query.set(key, value);
  }
  const text = query.toString();
  return `${location.pathname}${text ? `?${text}` : ''}`;
}

interface LinkProps {
  href: string;
  replace?: boolean;
  class?: string;
  title?: string;
  'aria-current'?: 'page';
  onClick?: (event: MouseEvent) => void;
  children?: ComponentChildren;
}

export function Link({ href, replace, onClick, ...rest }: LinkProps) {
  return (
    <a
      href={href}
      onClick={(event) => {
        onClick?.(event);
        if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(href, { replace });
      }}
      {...rest}
    />
  );
}
