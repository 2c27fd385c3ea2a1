// Temp dirs and files with known random content for tests.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp dir removed when the test ends. */
export async function tempDir(
  t: { after: (fn: () => Promise<void>) => void },
  prefix = 'oru-',
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Write `size` random bytes to `dir/name`; returns the path and the bytes. */
export async function randomFile(
  dir: string,
  name: string,
  size: number,
): Promise<{ path: string; data: Buffer }> {
  const data = randomBytes(size);
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, data };
}
