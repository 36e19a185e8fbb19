// The webhook deployer's status may carry what the other team's service measured of each revision's traffic
// (ServingStats), passed on to be recorded as serving observations; a malformed one is refused naming the field.
import { expect, it } from 'vitest';
import { parseStatus } from '../../plugins/deployers/webhook/wire';

const base = {
  ready: true,
  url: 'https://serving.example/iris',
  traffic: { 1: 100 },
  message: 'ok',
  revisions: [{ number: 1, modelVersion: 'ml/iris/1', health: 'READY' }],
};
const serving = { epoch: 'pod-7', firstMs: 0.1, growth: 1.25, revisions: { 1: { requests: 40, errors: 2, buckets: [0, 3, 37] } } };

it('passes a well-formed serving report on with the status, and leaves it out when the service sends none', () => {
  expect(parseStatus('d1', { ...base, serving })).toEqual({ status: expect.objectContaining({ deploymentId: 'd1', serving }) });
  expect((parseStatus('d1', base) as { status: object }).status).not.toHaveProperty('serving');
});

it('refuses a malformed serving report naming the field', () => {
  const bad = (s: unknown) => (parseStatus('d1', { ...base, serving: s }) as { problem?: string }).problem;
  expect(bad({ ...serving, growth: 1 })).toMatch(/^serving\.growth must be > 1/);
  expect(bad({ ...serving, revisions: { 1: { requests: -1, errors: 0, buckets: [] } } })).toMatch(/serving\.revisions\[1\]\.requests must be >= 0/);
  expect(bad({ ...serving, revisions: { x: { requests: 1, errors: 0, buckets: [] } } })).toMatch(/serving\.revisions/);
  expect(bad({ epoch: 'e' })).toMatch(/serving\.firstMs is missing/);
});
