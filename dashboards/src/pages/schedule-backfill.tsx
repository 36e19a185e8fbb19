// A schedule's backfill form on the Schedules page: run the schedule's fire times between two moments of the past
// (read in the browser's time zone), as `atelier schedule backfill` does. Says what was queued and what the schedule
// had already dealt with, or why the API refused.
import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { errorMessage } from '../api/client';
import { FormError } from '../components/states';
import { graphql } from '../graphql';

const BACKFILL = graphql(`
  mutation BackfillSchedule($id: ID!, $from: DateTime!, $to: DateTime!) {
    backfillSchedule(id: $id, from: $from, to: $to) {
      queued
      alreadyDealtWith
      schedule { id fires(limit: 3) { id fireTime outcome message run { id status } } }
    }
  }
`);

/** `datetime-local`'s value (the browser's local time) as an instant, or null while it is empty or incomplete. */
const instant = (value: string): string | null => (value && !Number.isNaN(Date.parse(value)) ? new Date(value).toISOString() : null);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function BackfillForm({ schedule, onClose }: { schedule: { id: string; name: string }; onClose: () => void }) {
  const [state, backfill] = useMutation(BACKFILL);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    const range = { from: instant(from), to: instant(to) };
    if (!range.from || !range.to) return setError('Give both ends of the range: the first and the last moment whose fire times should run.');
    const r = await backfill({ id: schedule.id, from: range.from, to: range.to });
    if (r.error) return setError(errorMessage(r.error));
    const { queued, alreadyDealtWith } = r.data!.backfillSchedule;
    const already = alreadyDealtWith.length ? `; ${alreadyDealtWith.length} ${alreadyDealtWith.length === 1 ? 'was' : 'were'} already dealt with` : '';
    setDone(`Queued ${plural(queued.length, 'fire time')}${already}. They start after the schedule's on-time fires, a few each second.`);
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Backfill ${schedule.name}`}>
      <label>
        From (your local time)
        <input type="datetime-local" step="1" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
      </label>
      <label>
        To
        <input type="datetime-local" step="1" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
      </label>
      <button type="submit" class="button primary" disabled={state.fetching}>
        Run these fire times
      </button>
      <button type="button" class="button subtle" onClick={onClose}>
        Close
      </button>
      <FormError message={error} />
      {done && (
        <p role="status" class="row-message">
          {done}
        </p>
      )}
    </form>
  );
}
