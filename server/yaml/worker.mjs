// The YAML parser's thread: parses each text it is sent and answers with the value or the error's name and message.
// Plain JavaScript so that it loads the same under tsx, vitest and plain node.
import { parentPort } from 'node:worker_threads';
import { parse } from 'yaml';

parentPort.on('message', ({ id, text }) => {
  try {
    parentPort.postMessage({ id, value: parse(text) });
  } catch (error) {
    parentPort.postMessage({ id, error: { name: error?.name ?? 'Error', message: String(error?.message ?? error), code: error?.code } });
  }
});
