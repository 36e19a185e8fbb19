// The classification lattice and lineage propagation, as pure functions.
import { describe, expect, it } from 'vitest';
import type { Label } from '../vocabulary';
import { join, joinAll, leq, propagate, unclassified } from './labels';

const L = (level: Label['level'], ...categories: string[]): Label => ({ level, categories: categories.sort() });

describe('labels form a lattice', () => {
  it('joins to the higher level with the union of categories', () => {
    expect(join(L('RESTRICTED'), L('PUBLIC', 'PII'))).toEqual(L('RESTRICTED', 'PII'));
    expect(join(L('INTERNAL', 'UGC'), L('CONFIDENTIAL', 'PII'))).toEqual(L('CONFIDENTIAL', 'PII', 'UGC'));
    expect(joinAll([])).toEqual(L('PUBLIC'));
  });

  it('orders by level and category inclusion, with UNCLASSIFIED above everything', () => {
    expect(leq(L('PUBLIC'), L('INTERNAL'))).toBe(true);
    expect(leq(L('INTERNAL', 'PII'), L('RESTRICTED'))).toBe(false); // a category the other lacks
    expect(leq(L('RESTRICTED', 'PII', 'UGC'), unclassified())).toBe(true);
    expect(leq(unclassified(), L('RESTRICTED', 'PII'))).toBe(false);
    expect(join(unclassified(), L('RESTRICTED')).level).toBe('UNCLASSIFIED');
  });

  it('satisfies the lattice laws on every pair of a sample', () => {
    const sample = [L('PUBLIC'), L('INTERNAL', 'PII'), L('CONFIDENTIAL', 'UGC'), L('RESTRICTED'), L('RESTRICTED', 'PII', 'UGC'), unclassified()];
    for (const a of sample)
      for (const b of sample) {
        const j = join(a, b);
        expect(join(b, a)).toEqual(j); // commutative
        expect(leq(a, j) && leq(b, j)).toBe(true); // an upper bound
        for (const c of sample) if (leq(a, c) && leq(b, c)) expect(leq(j, c)).toBe(true); // the least one
      }
  });
});

describe('propagation from lineage', () => {
  const inputs = new Map([
    [
      'users',
      new Map([
        ['id', L('INTERNAL')],
        ['email', L('RESTRICTED', 'PII')],
        ['age', L('CONFIDENTIAL', 'PII')],
      ]),
    ],
    ['events', new Map([['clicks', L('PUBLIC')]])],
  ]);

  it('joins the declared sources of each output column', () => {
    const out = propagate(
      [
        { name: 'user', from: ['users.id'] },
        { name: 'contact', from: ['users.email', 'events.clicks'] },
        { name: 'constant', from: [] },
      ],
      inputs,
    );
    expect(out.get('user')).toEqual(L('INTERNAL'));
    expect(out.get('contact')).toEqual(L('RESTRICTED', 'PII')); // RESTRICTED join PUBLIC
    expect(out.get('constant')).toEqual(L('PUBLIC'));
  });

  it('takes the join of every input column when lineage is unknown, and UNCLASSIFIED for an opaque step', () => {
    expect(propagate([{ name: 'x' }], inputs).get('x')).toEqual(L('RESTRICTED', 'PII'));
    expect(propagate([{ name: 'x' }], new Map()).get('x')?.level).toBe('UNCLASSIFIED');
  });

  it('treats a source column it cannot find as UNCLASSIFIED, so a gap can only raise a label', () => {
    expect(propagate([{ name: 'x', from: ['users.salary'] }], inputs).get('x')?.level).toBe('UNCLASSIFIED');
    expect(propagate([{ name: 'x', from: ['orders.total'] }], inputs).get('x')?.level).toBe('UNCLASSIFIED');
  });
});
