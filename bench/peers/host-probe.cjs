// The executor host's collections and allocations while S1 runs (docs/performance.md, "S1: the host's attempt, held
// cheaply"). Preloaded into the host by throughput-profile.ts's harness:
//   PROFILE_HOST_NODE_ARGS='--require ./bench/peers/host-probe.cjs --diagnostic-dir=/tmp/probe'
// it counts the host's collections by kind over its life (a PerformanceObserver); preloaded as host-heap-probe.cjs
// instead, it also runs V8's sampling heap profiler (every 16 KB) with the objects either collector freed included
// (what the host allocates, not only what it keeps: `--heap-prof` keeps only the live). At SIGTERM (the harness's
// stop) or exit it writes host-probe-<pid>.gc.json and host-probe-<pid>.heapprofile into node's diagnostic dir (its
// own flag, read here because the harness hands the host no environment of its own). The .gc.json also counts the
// NATS protocol operations the host wrote and read on its sockets (`nats`: by operation, and the published ones by
// subject, with `_INBOX.` and `$JS.ACK.` replies folded; docs/performance.md "S1: the executor host's CPU a task
// (session 35)"). Run as a script, it sums a profile:
//   node bench/peers/host-probe.cjs /tmp/probe/host-probe-<pid>.heapprofile [tasks] [top]
const fs = require('node:fs');
const path = require('node:path');

function flag(name) {
  const arg = process.execArgv.find((a) => a.startsWith(`--${name}=`));
  return arg?.slice(name.length + 3);
}

function probe() {
  const inspector = require('node:inspector');
  const { PerformanceObserver, constants } = require('node:perf_hooks');
  const out = path.join(flag('diagnostic-dir') ?? process.cwd(), `host-probe-${process.pid}`);
  const names = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'markCompact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
  };
  const kinds = {};
  const nats = { written: {}, read: {}, published: {}, writes: 0, bytesWritten: 0, bytesRead: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (kinds[names[entry.detail.kind] ?? 'other'] ??= { count: 0, ms: 0 });
      kind.count++;
      kind.ms += entry.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const interval = Number(process.env.HOST_PROBE_HEAP_INTERVAL);
  let session;
  if (interval > 0) {
    session = new inspector.Session();
    session.connect();
    session.post('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    fs.writeFileSync(`${out}.gc.json`, JSON.stringify({ kinds, nats }));
    session?.post('HeapProfiler.stopSampling', (err, r) => {
      if (!err) fs.writeFileSync(`${out}.heapprofile`, JSON.stringify(r.profile));
    });
  };
  process.on('exit', write);
  countNats(nats);
  for (const signal of ['SIGTERM', 'SIGINT']) process.prependListener(signal, write);
}

/** A subject as counted: replies and acks folded to their prefix (each is unique). */
const subjectKey = (subject) => (subject.startsWith('_INBOX.') ? '_INBOX.*' : subject.startsWith('$JS.ACK.') ? '$JS.ACK.*' : subject);

/**
 * A parser of one direction of a NATS connection's protocol: counts each operation by its verb (and a publish by its
 * subject), skipping the payload a PUB/HPUB/MSG/HMSG line announces (its last token is the payload's size in bytes).
 */
function natsCounter(byVerb, published) {
  let pending = '';
  let skip = 0;
  return (chunk) => {
    pending += Buffer.from(chunk).toString('latin1');
    for (;;) {
      if (skip) {
        if (pending.length < skip) return;
        pending = pending.slice(skip);
        skip = 0;
      }
      const end = pending.indexOf('\r\n');
      if (end < 0) return;
      const words = pending.slice(0, end).split(' ');
      pending = pending.slice(end + 2);
      const verb = words[0].toUpperCase();
      if (!verb) continue;
      byVerb[verb] = (byVerb[verb] ?? 0) + 1;
      if (verb === 'PUB' || verb === 'HPUB' || verb === 'MSG' || verb === 'HMSG') {
        skip = Number(words[words.length - 1]) + 2;
        if (published && (verb === 'PUB' || verb === 'HPUB')) published[subjectKey(words[1])] = (published[subjectKey(words[1])] ?? 0) + 1;
      }
    }
  };
}

/** Wraps the sockets' writes and reads to count NATS operations on the connections whose first write is CONNECT. */
function countNats(nats) {
  const net = require('node:net');
  const write = net.Socket.prototype.write;
  const counters = new WeakMap();
  net.Socket.prototype.write = function (chunk, ...rest) {
    let counter = counters.get(this);
    if (counter === undefined) {
      const head = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) || chunk instanceof Uint8Array ? Buffer.from(chunk).toString('latin1', 0, 8) : '';
      counter = head.startsWith('CONNECT ') ? natsCounter(nats.written, nats.published) : null;
      counters.set(this, counter);
      if (counter) {
        const read = natsCounter(nats.read);
        this.on('data', (data) => {
          nats.bytesRead += data.length;
          read(data);
        });
      }
    }
    if (counter && chunk != null && typeof chunk !== 'function') {
      nats.writes++;
      nats.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      counter(chunk);
    }
    return write.call(this, chunk, ...rest);
  };
}

/** Bytes allocated in all, and by function (self), per task. */
function sum(file, tasks, top) {
  const byFunction = new Map();
  let total = 0;
  const walk = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const child of node.children) walk(child);
  };
  walk(JSON.parse(fs.readFileSync(file, 'utf8')).head);
  console.log(`${(total / 1e6).toFixed(1)} MB allocated, ${(total / tasks / 1000).toFixed(2)} KB a task`);
  for (const [key, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(bytes / tasks / 1000).toFixed(2).padStart(7)} KB  ${key}`);
}

if (require.main === module) sum(process.argv[2], Number(process.argv[3] ?? 10000), Number(process.argv[4] ?? 25));
else probe();
