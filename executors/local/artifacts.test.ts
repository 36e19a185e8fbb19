// What a module's artifacts folder may hold: regular files in folders, in path order; a link or a FIFO refuses it.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ArtifactsRefused, collectArtifacts, MAX_ARTIFACT_BYTES, MAX_ARTIFACT_FILES, uploadArtifacts } from './artifacts';

const scratch = () => mkdtemp(path.join(os.tmpdir(), 'atelier-artifacts-'));

it('lists the regular files under the folder, nested, in path order; none when the folder is missing', async () => {
  const dir = await scratch();
  await mkdir(path.join(dir, 'model', 'b'), { recursive: true });
  await writeFile(path.join(dir, 'model', 'b', 'w.bin'), Buffer.alloc(3));
  await writeFile(path.join(dir, 'model', 'a.json'), '{}');
  await mkdir(path.join(dir, 'empty'));
  expect((await collectArtifacts(dir)).map((f) => [f.path, f.size])).toEqual([
    ['model/a.json', 2],
    ['model/b/w.bin', 3],
  ]);
  expect(await collectArtifacts(path.join(dir, 'missing'))).toEqual([]);
});

it('refuses a symbolic link (to a file or a folder) and a FIFO, naming it', async () => {
  const linked = await scratch();
  await symlink('/etc', path.join(linked, 'etc'));
  await expect(collectArtifacts(linked)).rejects.toThrow(new ArtifactsRefused('"etc" is a symbolic link: write the file itself into ATELIER_ARTIFACTS_DIR'));
  const fifo = await scratch();
  await mkdir(path.join(fifo, 'm'));
  execFileSync('mkfifo', [path.join(fifo, 'm', 'pipe')]);
  await expect(collectArtifacts(fifo)).rejects.toThrow(/"m\/pipe" is not a regular file or folder/);
});

it('refuses more files, or more bytes in all, than it logs', async () => {
  const dir = await scratch();
  await Promise.all(Array.from({ length: MAX_ARTIFACT_FILES + 1 }, (_, i) => writeFile(path.join(dir, `f${i}`), '')));
  await expect(collectArtifacts(dir)).rejects.toThrow(`more than ${MAX_ARTIFACT_FILES} files`);
  const big = await scratch();
  await writeFile(path.join(big, 'huge.bin'), '');
  await truncate(path.join(big, 'huge.bin'), MAX_ARTIFACT_BYTES + 1); // sparse: nothing written
  await expect(collectArtifacts(big)).rejects.toThrow(`more than ${MAX_ARTIFACT_BYTES} (keep large data in a dataset`);
});

it('sends a file again while the control plane is busy (503, Retry-After), and stops at a refusal about the file', async () => {
  const dir = await scratch();
  await writeFile(path.join(dir, 'model.json'), '{"w":[1,2]}');
  const files = await collectArtifacts(dir);
  const seen: { url: string; body: string; auth: string | undefined }[] = [];
  let answers = [503, 503, 200];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ url: req.url!, body, auth: req.headers.authorization });
      const status = answers.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 503 ? { 'retry-after': '0' } : {}) });
      res.end(status === 200 ? '{}' : JSON.stringify({ message: status === 503 ? 'busy' : 'An artifact is at most 1 MiB' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    await uploadArtifacts({ uri, runId: 'task-1', token: 'atl_task' }, files, undefined, 1);
    expect(seen).toHaveLength(3);
    expect(seen.every((s) => s.url === '/api/2.0/mlflow-artifacts/artifacts/0/task-1/artifacts/model.json' && s.body === '{"w":[1,2]}')).toBe(true);
    expect(seen[0]!.auth).toBe('Bearer atl_task');
    answers = [413];
    await expect(uploadArtifacts({ uri, runId: 'task-1', token: 'atl_task' }, files, undefined, 1)).rejects.toThrow(
      new ArtifactsRefused('the control plane refused artifact "model.json" (413): An artifact is at most 1 MiB'),
    );
  } finally {
    server.close();
  }
});

it('refuses a name that is not UTF-8 (it would name no file), as the module’s doing, not the platform’s failure', async () => {
  const dir = await scratch();
  await mkdir(path.join(dir, 'model'));
  await writeFile(Buffer.from(`${path.join(dir, 'model')}/w\xff.bin`, 'latin1'), 'x');
  await expect(collectArtifacts(dir)).rejects.toThrow(
    new ArtifactsRefused('"model/w\ufffd.bin" is not a UTF-8 name: name the files in ATELIER_ARTIFACTS_DIR in UTF-8'),
  );
  // Odd names that are UTF-8 (a newline, a backslash) are listed as they are; the control plane judges the path.
  const odd = await scratch();
  await writeFile(path.join(odd, 'a\nb'), '');
  expect((await collectArtifacts(odd)).map((f) => f.path)).toEqual(['a\nb']);
});

it('refuses a file that changes while it is sent, rather than logging bytes the module had not finished', async () => {
  const dir = await scratch();
  await writeFile(path.join(dir, 'model.bin'), 'first');
  const files = await collectArtifacts(dir);
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      bodies.push(body);
      // A process the module left behind goes on writing as the host sends.
      await writeFile(path.join(dir, 'model.bin'), 'first, and more');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    await expect(uploadArtifacts({ uri, runId: 'task-1', token: 'atl_task' }, files, undefined, 1)).rejects.toThrow(
      new ArtifactsRefused('"model.bin" changed while it was being sent: finish writing every artifact before the module exits'),
    );
    expect(bodies).toEqual(['first']);
  } finally {
    server.close();
  }
});

it('refuses ATELIER_ARTIFACTS_DIR, or a folder above it, that the module replaced with a link (the host would read where it points)', async () => {
  for (const linked of ['outputs', 'outputs/artifacts']) {
    const attempt = await scratch();
    const secrets = await scratch();
    await writeFile(path.join(secrets, 'admin-token'), 'atl_admin');
    await mkdir(path.join(attempt, 'outputs', 'artifacts'), { recursive: true });
    await rm(path.join(attempt, linked), { recursive: true });
    if (linked === 'outputs') {
      await mkdir(path.join(secrets, 'artifacts'));
      await writeFile(path.join(secrets, 'artifacts', 'admin-token'), 'atl_admin');
    }
    await symlink(secrets, path.join(attempt, linked));
    await expect(collectArtifacts(path.join(attempt, 'outputs', 'artifacts'), attempt)).rejects.toThrow(
      new ArtifactsRefused(`"${linked}" is a symbolic link: leave ATELIER_ARTIFACTS_DIR and the folders above it as they were made`),
    );
  }
  // Gone altogether: nothing to log.
  const attempt = await scratch();
  expect(await collectArtifacts(path.join(attempt, 'outputs', 'artifacts'), attempt)).toEqual([]);
});
