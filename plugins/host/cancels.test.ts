import { describe, expect, it } from 'vitest';
import type { CancelMessage, TaskMessage } from '../protocol';
import { cancelStops } from './cancels';
import { Attempt } from './host-attempt';

const running = (attemptKey?: string): Attempt => new Attempt('t:1', { taskId: 't', attempt: 1, ...(attemptKey ? { attemptKey } : {}) } as TaskMessage);
const cancel = (extra: Partial<CancelMessage> = {}): CancelMessage => ({ taskId: 't', attempt: 1, reason: 'cancelled', ...extra });

describe('cancelStops', () => {
  it('stops an attempt by number when either side has no key (a control plane or claim below protocol 6)', () => {
    expect(cancelStops(cancel(), running())).toBe(true);
    expect(cancelStops(cancel(), running('a'))).toBe(true);
    expect(cancelStops(cancel({ attemptKey: 'a' }), running())).toBe(true);
  });
  it('stops only the execution holding the key a keyed cancel names', () => {
    expect(cancelStops(cancel({ attemptKey: 'a' }), running('a'))).toBe(true);
    expect(cancelStops(cancel({ attemptKey: 'a' }), running('b'))).toBe(false);
  });
  it('stops a stale execution only where it holds the stale key, never by number', () => {
    expect(cancelStops(cancel({ attemptKey: 'old', stale: true }), running('old'))).toBe(true);
    expect(cancelStops(cancel({ attemptKey: 'old', stale: true }), running('new'))).toBe(false);
    expect(cancelStops(cancel({ attemptKey: 'old', stale: true }), running())).toBe(false);
  });
});
