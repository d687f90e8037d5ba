import { describe, expect, it } from 'vitest';
import { type CliIo, createBufferedIo } from './io';
import { createProgress } from './progress';

describe('createProgress', () => {
  it('prints a line at each 10% and a final line when stderr is not a TTY', () => {
    const io = createBufferedIo();
    const progress = createProgress(io, { total: 20, label: 'quantize' });
    expect(progress.mode).toBe('lines');
    for (let i = 0; i < 20; i++) progress.increment(1, `t${i}`);
    progress.stop();
    progress.stop();
    const lines = io.stderrText().trimEnd().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(/^quantize: 2\/20 \(10%\), ETA /);
    expect(lines[9]).toMatch(/^quantize: 20\/20 \(100%\), done in /);
    expect(io.stdoutText()).toBe('');
  });

  it('is silent in --json mode', () => {
    const io = createBufferedIo({ isTTY: true });
    const progress = createProgress(io, { total: 5, label: 'x', json: true });
    expect(progress.mode).toBe('silent');
    progress.increment(5);
    progress.stop();
    expect(io.stderrText() + io.stdoutText()).toBe('');
  });

  it('draws a cli-progress bar with ETA on a TTY', () => {
    const chunks: string[] = [];
    const tty = {
      isTTY: true,
      columns: 120,
      write: (text: string) => chunks.push(text),
      cursorTo: () => true,
      clearLine: () => true,
      clearScreenDown: () => true,
      moveCursor: () => true,
      on: () => tty,
      removeListener: () => tty,
    };
    const io: CliIo = { stdout: tty, stderr: tty, cwd: '/', env: {} };
    const progress = createProgress(io, { total: 4, label: 'quantize' });
    expect(progress.mode).toBe('bar');
    progress.increment(4, 'done');
    progress.stop();
    const text = chunks.join('');
    expect(text).toContain('quantize [');
    expect(text).toContain('4/4');
    expect(text).toContain('ETA');
  });
});
