// Governance benchmarks: (a) building the column-level CASL ability of an identity with 500 rules (500 datasets,
// each with its permitted columns as explicit fields) and asking it which columns of one dataset may be read,
// as every preview request does; (b) a 100-row dataset preview with authorization against the same preview
// with it off (the labels read, the ability built, the audit record written), on the same data in the same run.
import { subject } from '@casl/ability';
import { permittedFieldsOf } from '@casl/ability/extra';
import { execute, parse } from 'graphql';
import { builder } from '../schema/builder';
import type { Context } from '../schema/context';
import { schema } from '../schema/index';
import { defineAbilityFor } from '../server/auth/ability';
import { defineColumnAbility, permittedColumns, previewDataset } from '../server/governance/preview';
import type { Label } from '../server/vocabulary';
import { startTestApp } from '../test/harness/app';
import { percentile, type Row } from './lib';

const RULES = 500;
const COLUMNS = 8;
const ROUNDS = 300;
const TASKS = 500;

export async function governanceBench(): Promise<Row[]> {
  const levels: Label[] = [
    { level: 'PUBLIC', categories: [] },
    { level: 'INTERNAL', categories: [] },
    { level: 'CONFIDENTIAL', categories: ['CUSTOMER_DATA'] },
    { level: 'RESTRICTED', categories: ['PII'] },
  ];
  const catalog = Array.from({ length: RULES }, (_, d) => ({
    dataset: `ns${d % 20}/table${d}`,
    labels: new Map(Array.from({ length: COLUMNS }, (_, c) => [`col${c}`, levels[(c + d) % levels.length]!] as const)),
  }));
  const all = Array.from({ length: COLUMNS }, (_, c) => `col${c}`);
  const abilityTimes: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    const ability = defineColumnAbility('experimentation', catalog);
    permittedColumns(ability, catalog[i % RULES]!.dataset, all);
    abilityTimes.push(performance.now() - t0);
  }

  const t = await startTestApp();
  try {
    const columns = Array.from({ length: 10 }, (_, c) => ({
      name: `c${c}`,
      type: 'string',
      label: c === 9 ? { level: 'RESTRICTED', categories: ['PII'] } : { level: c % 2 ? 'INTERNAL' : 'PUBLIC' },
    }));
    const sample = Array.from({ length: 1000 }, (_, r) => Object.fromEntries(columns.map((c) => [c.name, `${c.name}-${r}`])));
    await t.api.gql(
      `mutation ($c: [DatasetColumnInput!]!, $s: JSON) { createDataset(name: "bench/wide", domain: production, columns: $c, digest: "sha256:${'d'.repeat(64)}", sample: $s) { id } }`,
      { c: columns, s: sample },
    );
    const [admin] = await t.app.database.db.query.identities.findMany({ where: (i, { eq }) => eq(i.name, 'admin') });
    const member = { ...admin!, role: 'member' as const };
    const caller = { identity: member, grants: { domains: [] } };
    const input = { dataset: 'bench/wide', limit: 100 };
    const on: number[] = [];
    const off: number[] = [];
    for (let i = 0; i < 20; i++) await previewDataset(t.app.services.db, caller, input); // warm up
    for (let i = 0; i < ROUNDS; i++) {
      // interleaved, so both sides see the same machine
      let t0 = performance.now();
      await previewDataset(t.app.services.db, caller, input, { authorize: false });
      off.push(performance.now() - t0);
      t0 = performance.now();
      await previewDataset(t.app.services.db, caller, input);
      on.push(performance.now() - t0);
    }
    const [onP50, offP50] = [percentile(on, 50), percentile(off, 50)];

    // (c) The request ability: built from a member's role and grants, then one run instance's permitted fields.
    const requestTimes: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const ability = defineAbilityFor(member, { domains: ['adhoc'] });
      permittedFieldsOf(ability, 'read', subject('Run', { domain: 'production' }), { fieldsFrom: (rule) => [rule.fields ?? []].flat() });
      requestTimes.push(performance.now() - t0);
    }

    // (d) The run page's query (a run and its 500 tasks, 12 fields each) through the schema with scope-auth's
    // instance and per-field checks, against the same schema built with scope-auth off, on the same context.
    await t.publishFixture('sleep');
    await t.createWorkflow({
      name: 'wide',
      tasks: Array.from({ length: TASKS }, (_, i) => ({ name: `t${i}`, module: 'test/sleep', parameters: { ms: 60_000 } })),
    });
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "wide") { id } }`);
    const document = parse(
      `query ($id: ID!) { run(id: $id) { id status domain parameters tasks { id node status kind moduleRef attempt maxAttempts executor pool parameters reason queuedAt } } }`,
    );
    const unguarded = builder.toSchema({ sortSchema: true, disableScopeAuth: true });
    const context = (): Context => ({
      identity: member,
      token: '',
      scopes: null,
      grants: { domains: [] },
      ability: defineAbilityFor(member),
      services: t.app.services,
    });
    const query = async (target: typeof schema) => {
      const result = await execute({ schema: target, document, variableValues: { id: startRun.id }, contextValue: context() });
      if (result.errors?.length && target === unguarded) throw new Error(JSON.stringify(result.errors[0]));
      return result;
    };
    for (let i = 0; i < 10; i++) await Promise.all([query(schema), query(unguarded)]);
    const guardedTimes: number[] = [];
    const unguardedTimes: number[] = [];
    for (let i = 0; i < 60; i++) {
      let t0 = performance.now();
      await query(unguarded);
      unguardedTimes.push(performance.now() - t0);
      t0 = performance.now();
      await query(schema);
      guardedTimes.push(performance.now() - t0);
    }
    await t.app.services.orchestrator.cancelRun(startRun.id, null);
    const [guardedP50, unguardedP50] = [percentile(guardedTimes, 50), percentile(unguardedTimes, 50)];
    return [
      {
        bench: 'governance',
        metric: 'request ability (member with a grant) + a run instance’s permitted fields, p50',
        value: percentile(requestTimes, 50) * 1000,
        unit: 'µs',
        note: `p99 ${(percentile(requestTimes, 99) * 1000).toFixed(0)} µs`,
      },
      {
        bench: 'governance',
        metric: `run page query (1 run, ${TASKS} tasks × 12 fields) with scope-auth, p50`,
        value: guardedP50,
        unit: 'ms',
        floor: unguardedP50,
        ratio: guardedP50 / unguardedP50,
        note: 'floor: the same query through the schema with scope-auth off',
      },
      {
        bench: 'governance',
        metric: `column ability from ${RULES} rules + permitted-fields check, per request, p50`,
        value: percentile(abilityTimes, 50) * 1000,
        unit: 'µs',
        note: `p99 ${(percentile(abilityTimes, 99) * 1000).toFixed(0)} µs; ${RULES} datasets × ${COLUMNS} columns`,
      },
      {
        bench: 'governance',
        metric: '100-row dataset preview, authorized, p50',
        value: onP50,
        unit: 'ms',
        floor: offP50,
        ratio: onP50 / offP50,
        note: 'floor: the same preview with authorization off; aim under 1.2×',
      },
    ];
  } finally {
    await t.stop();
  }
}
