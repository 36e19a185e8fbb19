// host-probe.cjs with V8's sampling heap profiler on (a sample every 16 KB allocated): see that file.
process.env.HOST_PROBE_HEAP_INTERVAL = '16384';
require('./host-probe.cjs');
