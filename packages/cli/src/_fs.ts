import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { CliError } from './errors';

/** Resolves a user path against the injected working directory (never `process.cwd()`). */
export function resolvePath(cwd: string, path: string): string {
  return isAbsolute(path) ? path : resolve(cwd, path);
}

/** Reads a UTF-8 input file; a missing or unreadable file is an input error (exit 3). */
export async function readInputText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new CliError(
      'INPUT_MISSING',
      `reading ${what} ${path}: expected a readable file, got ${code ?? (cause as Error).message}`,
      {
        hint:
          code === 'ENOENT'
            ? 'Check the path (relative paths resolve against the current directory).'
            : 'Check the file permissions.',
        cause,
      },
    );
  }
}

/** sha256 of a byte string or text, hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes a file atomically: a temporary file in the same directory, fsync, rename. A crash
 * leaves either the old file or the new one, never half of one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`,
  );
  const handle = await open(temp, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
