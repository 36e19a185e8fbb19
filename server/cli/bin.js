#!/usr/bin/env node
// `npx atelier`: registers tsx so Node can load the TypeScript sources, then runs the CLI in ./main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
