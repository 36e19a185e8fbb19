import { openSync, writeSync } from 'node:fs';

const { mib, to = 'stdout' } = JSON.parse(process.env.ATELIER_PARAMS ?? '{}');
const fd = to === 'devnull' ? openSync('/dev/null', 'w') : 1;
const LINE = `${'x'.repeat(99)}\n`;
const chunk = Buffer.from(LINE.repeat(10_000)); // ~1 MB a write
let left = Math.floor((mib * 1024 * 1024) / LINE.length);
while (left > 0) {
  const buf = left >= 10_000 ? chunk : chunk.subarray(0, left * LINE.length);
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
  left -= buf.length / LINE.length;
}
