import { describe, expect, it } from 'vitest';
import { cancelled, failed, permanentFailure, retryableFailure, succeeded, systemFailure, timedOut } from './outcomes';

describe('outcome constructors', () => {
  it('build each terminal state with only the keys that carry a value', () => {
    expect(succeeded()).toStrictEqual({ state: 'SUCCEEDED' });
    expect(succeeded({ exitCode: 0, provisioningMs: undefined })).toStrictEqual({ state: 'SUCCEEDED', exitCode: 0 });
    expect(failed('exit-code', 'exited with code 2', { exitCode: 2 })).toStrictEqual({
      state: 'FAILED',
      reason: 'exit-code',
      message: 'exited with code 2',
      exitCode: 2,
    });
    expect(failed('signal', 'terminated', { exitCode: null })).toStrictEqual({ state: 'FAILED', reason: 'signal', message: 'terminated', exitCode: null });
    expect(cancelled()).toStrictEqual({ state: 'CANCELLED' });
    expect(cancelled('shutdown', 'left running')).toStrictEqual({ state: 'CANCELLED', reason: 'shutdown', message: 'left running' });
    expect(timedOut('too slow')).toStrictEqual({ state: 'TIMED_OUT', reason: 'timeout', message: 'too slow' });
  });

  it('say who may retry a failure', () => {
    expect(permanentFailure('invalid-image', 'bad')).toStrictEqual({ state: 'FAILED', reason: 'invalid-image', message: 'bad', retryable: false });
    expect(retryableFailure('image-pull', 'slow registry')).toMatchObject({ retryable: true });
    expect(retryableFailure('image-pull')).not.toHaveProperty('systemFailure');
    expect(systemFailure('lost', 'gone', { exitCode: 137 })).toStrictEqual({
      state: 'FAILED',
      reason: 'lost',
      message: 'gone',
      exitCode: 137,
      retryable: true,
      systemFailure: true,
    });
    // The policy decides when retryable is unset.
    expect(failed('run-failed')).not.toHaveProperty('retryable');
  });
});
