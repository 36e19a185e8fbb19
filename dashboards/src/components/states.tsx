// Loading, empty and error states, so every page says plainly what is going on.
import type { ComponentChildren } from 'preact';
import { errorMessage } from '../api/client';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="state loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="state empty">
      <h2>{title}</h2>
      {children}
    </div>
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
