// The condition thread (server/threads/deadline-thread.ts): evaluates each condition it is sent over its context.
// Plain JavaScript so that it loads the same under tsx, vitest and plain node.
import { parentPort } from 'node:worker_threads';
import { evaluateHere } from './condition-env.mjs';

parentPort.on('message', ({ id, text, context }) => parentPort.postMessage({ id, value: evaluateHere(text, context) }));
