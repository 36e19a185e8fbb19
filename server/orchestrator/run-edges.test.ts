import { expect, it } from 'vitest';
import { DOWNSTREAM_READ } from './recorded-tasks';
import { RunEdges } from './run-edges';

const task = (id: string, dependsOn: string[] = [], status = dependsOn.length ? 'PENDING' : 'READY') => ({ id, node: id, dependsOn, status });

it("knows each task's downstream keys, in node order; a leaf has none; a task it was not told of is unknown", () => {
  const edges = new RunEdges();
  edges.planned('r', [task('a'), task('c', ['a']), task('b', ['a']), task('d', ['b', 'c']), task('e')]);
  expect(edges.downstreamOf('r', 'a')).toEqual(['b', 'c']);
  expect(edges.downstreamOf('r', 'b')).toEqual(['d']);
  // The same children, one array between them.
  expect(edges.downstreamOf('r', 'b')).toBe(edges.downstreamOf('r', 'c'));
  expect(edges.downstreamOf('r', 'd')).toEqual([]);
  expect(edges.downstreamOf('r', 'e')).toEqual([]);
  // A map's item (written later), another run's task, a task of a run not started here: unknown.
  expect(edges.downstreamOf('r', 'a[0]')).toBeUndefined();
  expect(edges.downstreamOf('other', 'a')).toBeUndefined();
  edges.ended('r');
  expect(edges.downstreamOf('r', 'a')).toBeUndefined();
});

it('leaves out a fan-out wider than the read returns whole, a run with nothing waiting, and the oldest runs past its allowance', () => {
  const edges = new RunEdges(6);
  const wide = Array.from({ length: DOWNSTREAM_READ + 1 }, (_, i) => task(`x${i}`, ['w']));
  edges.planned('wide', [task('w'), ...wide]);
  expect(edges.downstreamOf('wide', 'w')).toBeUndefined(); // 10 tasks: more than the allowance of 6
  const big = new RunEdges();
  big.planned('wide', [task('w'), ...wide]);
  expect(big.downstreamOf('wide', 'w')).toBeUndefined();
  expect(big.downstreamOf('wide', 'x0')).toEqual([]);
  edges.planned('roots', [task('a'), task('b')]);
  expect(edges.downstreamOf('roots', 'a')).toBeUndefined();
  edges.planned('one', [task('a'), task('b', ['a'])]);
  edges.planned('two', [task('a'), task('b', ['a']), task('c', ['b'])]);
  expect(edges.downstreamOf('one', 'a')).toEqual(['b']);
  edges.planned('three', [task('a'), task('b', ['a'])]);
  expect(edges.downstreamOf('one', 'a')).toBeUndefined();
  expect(edges.downstreamOf('two', 'b')).toEqual(['c']);
  expect(edges.downstreamOf('three', 'a')).toEqual(['b']);
});

it("learns a run it did not start from the run's tasks, once; drops a read whose run ended or was noted meanwhile", async () => {
  const plans = new Map([
    ['r', [task('a'), task('b', ['a']), task('c', ['a'])]],
    ['big', Array.from({ length: 7 }, (_, i) => task(`t${i}`, i ? [`t${i - 1}`] : []))],
  ]);
  const reads: string[] = [];
  let fail = false;
  const edges = new RunEdges(6, async (runId, limit) => {
    reads.push(`${runId}:${limit}`);
    if (fail) throw new Error('down');
    return (plans.get(runId) ?? []).slice(0, limit);
  });
  edges.learn('r');
  edges.learn('r'); // one read under way
  expect(edges.downstreamOf('r', 'a')).toBeUndefined(); // not yet answered: the scan
  await edges.learnt('r');
  expect(edges.downstreamOf('r', 'a')).toEqual(['b', 'c']);
  edges.learn('r'); // known: not read again
  expect(reads).toEqual(['r:7']);
  // A run that is not there (nothing read) is not kept; one over the allowance is kept as knowing nothing.
  edges.learn('none');
  edges.learn('big');
  await Promise.all([edges.learnt('none'), edges.learnt('big')]);
  expect(edges.downstreamOf('big', 't0')).toBeUndefined();
  edges.learn('big');
  edges.learn('none');
  expect(reads).toEqual(['r:7', 'none:7', 'big:7', 'none:7']);
  // Ended, or noted by a start, while read: the read's answer is dropped.
  edges.ended('r');
  edges.learn('r');
  edges.ended('r');
  await edges.learnt('r');
  expect(edges.downstreamOf('r', 'a')).toBeUndefined();
  edges.learn('r');
  edges.planned('r', [task('a'), task('b', ['a'])]);
  await edges.learnt('r');
  expect(edges.downstreamOf('r', 'a')).toEqual(['b']);
  // A read that fails leaves the run unknown, to be read again.
  fail = true;
  edges.learn('x');
  await edges.learnt('x');
  fail = false;
  edges.learn('x');
  expect(reads.slice(-2)).toEqual(['x:7', 'x:7']);
});
