// Loading, empty and error states, so every page says plainly what is going on; `QueryState` picks the one a
// query's result calls for, and the message of a failed action sits in one `FormError`.
import type { ComponentChildren } from 'preact';
import { errorMessage } from '../api/client';
import { Link } from '../router';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="state loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function EmptyState({ title, level = 2, children }: { title: string; level?: 1 | 2; children?: ComponentChildren }) {
  return (
    <div class="state empty">
      {level === 1 ? <h1>{title}</h1> : <h2>{title}</h2>}
      {children}
    </div>
  );
}

/**
 * Nothing at this address: says so and links to where to look instead. It is the page then, so its title is the
 * page's heading (level 1, as a screen reader's "next heading 1" expects); `level` 2 inside a page that has its own.
 */
export function NotFoundState({
  title,
  href,
  link,
  level = 1,
  children,
}: {
  title: string;
  href: string;
  link: string;
  level?: 1 | 2;
  children?: ComponentChildren;
}) {
  return (
    <EmptyState title={title} level={level}>
      <p>
        {children}
        <Link href={href}>{link}</Link>.
      </p>
    </EmptyState>
  );
}

export function ErrorState({ title = 'Something went wrong', error, retry }: { title?: string; error: unknown; retry?: () => void }) {
  return (
    <div class="state error" role="alert">
      <h2>{title}</h2>
      <p>{errorMessage(error)}</p>
      {retry && (
        <button type="button" class="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

interface QueryStateProps<T> {
  /** undefined until the query has answered; null when it answered that there is no such thing */
  data: T | null | undefined;
  error: unknown;
  errorTitle: string;
  retry?: () => void;
  loading: string;
  /** Shown for null data, or data that `isEmpty` calls empty (by default, an empty list). */
  empty?: ComponentChildren;
  isEmpty?(data: T): boolean;
  children(data: T): ComponentChildren;
}

const emptyList = (data: unknown) => Array.isArray(data) && data.length === 0;

/** The error (only while there is nothing to show), loading or empty state of a query, or its data drawn by `children`. */
export function QueryState<T>({ data, error, errorTitle, retry, loading, empty, isEmpty = emptyList, children }: QueryStateProps<T>) {
  if ((data === undefined || data === null) && error) return <ErrorState title={errorTitle} error={error} retry={retry} />;
  if (data === undefined) return <Loading label={loading} />;
  if (empty !== undefined && (data === null || isEmpty(data))) return <>{empty}</>;
  if (data === null) return null;
  return <>{children(data)}</>;
}

/** Why the last action failed, announced as it appears; nothing while there is no message. */
export function FormError({ message, id }: { message: string | null; id?: string }) {
  if (!message) return null;
  return (
    <p id={id} class="form-error" role="alert">
      {message}
    </p>
  );
}
