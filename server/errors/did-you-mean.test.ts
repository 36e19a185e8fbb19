import { describe, expect, it } from 'vitest';
import { closestName, nearestNames } from './did-you-mean';

const taskFields = [
  'name',
  'module',
  'workflow',
  'map',
  'models',
  'parameters',
  'dependsOn',
  'retries',
  'retryDelaySeconds',
  'trigger',
  'timeoutSeconds',
  'pool',
];

describe('closestName', () => {
  it.each([
    ['timeout', 'timeoutSeconds'], // a known name it begins (and Dagster's, Flyte's word for it)
    ['retryDelay', 'retryDelaySeconds'],
    ['dependOn', 'dependsOn'], // a letter missing
    ['depends_on', 'dependsOn'], // another case and separator
    ['TimeoutSeconds', 'timeoutSeconds'],
    ['upstream', 'dependsOn'], // Airflow's word
    ['needs', 'dependsOn'], // GitHub Actions'
    ['max_retries', 'retries'],
    ['params', 'parameters'],
    ['modul', 'module'],
  ])('suggests %s → %s', (given, meant) => expect(closestName(given, taskFields)).toBe(meant));

  it.each(['colour', 'x', 'image', 'gpu'])('suggests nothing for %s', (given) => expect(closestName(given, taskFields)).toBeUndefined());

  it('suggests nothing when two known names are as close', () => expect(closestName('poolx', ['pool1', 'pool2'])).toBeUndefined());

  it('suggests an alias only where the known names have it', () => expect(closestName('upstream', ['name', 'module'])).toBeUndefined());
});

describe('nearestNames', () => {
  const metrics = ['loss', 'val_loss', 'accuracy', 'val_accuracy', 'lr', 'epoch_time'];
  it('puts the name meant first, then the nearest others, at most as many as asked', () => {
    expect(nearestNames('acuracy', metrics, 3)).toEqual({ closest: 'accuracy', names: ['accuracy', 'val_accuracy', 'lr'] });
    expect(nearestNames('valloss', metrics, 2).names).toEqual(['val_loss', 'loss']);
  });
  it('names the nearest when none is close enough to say it was meant, and nothing from nothing', () => {
    expect(nearestNames('throughput', metrics, 2).closest).toBeUndefined();
    expect(nearestNames('throughput', metrics, 2).names).toHaveLength(2);
    expect(nearestNames('x', [], 5)).toEqual({ closest: undefined, names: [] });
  });
});
