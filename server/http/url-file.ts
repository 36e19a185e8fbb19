// Where a control plane listens, written to its data dir while it runs (`SERVER_URL_FILE`), so the CLI on the same
// machine finds a server started on another port (`PORT=4610 npm start`) without being told, as it finds the admin
// token. Removed on stop unless another process has written its own address there since.
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SERVER_URL_FILE } from '../config/defaults';
import type { Service } from '../lifecycle';

export function urlFileService(dataDir: string, url: () => string): Service {
  const file = path.join(dataDir, SERVER_URL_FILE);
  let written: string | undefined;
  return {
    name: 'url file',
    async start() {
      written = url();
      await writeFile(file, `${written}\n`);
    },
    async stop() {
      if (!written) return;
      const current = await readFile(file, 'utf8').catch(() => undefined);
      if (current?.trim() === written) await rm(file, { force: true });
      written = undefined;
    },
  };
}
