// A process's whole output appended to a file, each line stamped with the time it arrived, so a chaos failure's
// evidence can be laid beside the faults and the database's event times.
import { appendFileSync } from 'node:fs';

/** Returns a chunk writer for `file` (undefined: writes nothing). */
export function stampedLog(file: string | undefined): (chunk: Buffer) => void {
  if (!file) return () => undefined;
  let atLineStart = true;
  return (chunk) => {
    let text = '';
    for (const part of chunk.toString().split(/(?<=\n)/)) {
      if (atLineStart) text += `${new Date().toISOString()} `;
      text += part;
      atLineStart = part.endsWith('\n');
    }
    appendFileSync(file, text);
  };
}
