import { expect, it } from 'vitest';
import { alreadySaid } from './errors';

it('takes a detail as said when the lead names both what and where, and only then', () => {
  // the filter's column, a message repeated whole as its one detail, a wrapped list (a trigger's payload)
  expect(
    alreadySaid('filter column 14: expected a number, found the end of the filter.', {
      path: 'filter:14',
      message: 'expected a number, found the end of the filter',
    }),
  ).toBe(true);
  const whole = 'Webhooks may post nowhere yet: an operator sets ATELIER_WEBHOOK_ALLOWLIST.';
  expect(alreadySaid(whole, { path: 'url', message: whole })).toBe(true);
  expect(
    alreadySaid('The payload does not fit workflow "w": parameters.n: must be >= 1 Nothing was started.', { path: 'parameters.n', message: 'must be >= 1' }),
  ).toBe(true);
  // the same words about another place, or other words, are news
  expect(alreadySaid('tasks.a: is required', { path: 'tasks.b', message: 'is required' })).toBe(false);
  expect(alreadySaid('The workflow cannot run:', { path: 'parameters.n', message: 'must be >= 1' })).toBe(false);
});
