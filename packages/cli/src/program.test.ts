import { describe, expect, it } from 'vitest';
import { qlora } from './_test-helpers';
import { VERSION } from './_version';

const COMMANDS = [
  'compare',
  'inspect',
  'quantize',
  'experiment',
  'eval',
  'train',
  'merge',
  'convert',
];

describe('qlora program', () => {
  it('--help lists every command, the exit codes and examples', async () => {
    const { status, stdout } = await qlora(['--help']);
    expect(status).toBe(0);
    for (const c of COMMANDS) expect(stdout).toMatch(new RegExp(`^ {2}${c}\\b`, 'm'));
    expect(stdout).toContain(
      'Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 input file invalid',
    );
    expect(stdout).toContain('$ qlora compare');
  });

  it('each command has help with examples', async () => {
    for (const c of COMMANDS) {
      const { status, stdout } = await qlora([c, '--help']);
      expect(status).toBe(0);
      expect(stdout).toContain(`Usage: qlora ${c}`);
      expect(stdout).toContain(`Examples:\n  $ qlora ${c}`);
    }
  });

  it('no arguments prints help; --version prints the version', async () => {
    expect((await qlora([])).stdout).toContain('Usage: qlora');
    const version = await qlora(['--version']);
    expect(version).toMatchObject({ status: 0, stdout: `${VERSION}\n` });
  });

  it('an unknown command exits 2 with a suggestion on one line', async () => {
    const { status, stderr } = await qlora(['compar']);
    expect(status).toBe(2);
    expect(stderr).toBe(
      'qlora: error: unknown command \'compar\' (Did you mean compare?)\nhint: Run "qlora --help" or "qlora <command> --help" for usage.\n',
    );
  });

  it('the runtime commands give usage and input errors, not stack traces', async () => {
    expect((await qlora(['eval'])).status).toBe(2);
    expect((await qlora(['merge', '--adapter', 'a', '--out', 'o'])).status).toBe(2);
    expect((await qlora(['convert', 'gguf', 'a', 'b', 'c'])).status).toBe(2);
    expect((await qlora(['eval', '--model', 'm', '--shard', '3/2'])).status).toBe(2);
    const w8a8 = await qlora(['eval', '--model', 'm', '--w8a8', '--backend', 'wasm']);
    expect(w8a8.status).toBe(2);
    expect(w8a8.stderr).toContain('--w8a8: expected --backend webgpu (or auto), got wasm');
    const f16 = await qlora(['eval', '--model', 'm', '--f16', '--backend', 'cpu']);
    expect(f16.status).toBe(2);
    expect(f16.stderr).toContain('--f16: expected --backend webgpu (or auto), got cpu');
    const both = await qlora(['eval', '--model', 'm', '--f16', '--w8a8']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('--w8a8 and --f16: expected one of them, got both');
    expect((await qlora(['experiment', '--mix', '1.5', '--dry-run'])).status).toBe(2);
    const missing = await qlora(['train', '--model', 'm', '--data', 'no-such.json', '--json']);
    expect(missing.status).toBe(3);
    expect(JSON.parse(missing.stderr).error.exitCode).toBe(3);
  });

  it('invalid option values exit 2', async () => {
    expect((await qlora(['quantize', 'm', '--out', 'o', '--quant-type', 'int4'])).status).toBe(2);
    expect((await qlora(['quantize', 'm', '--out', 'o', '--blocksize', 'x'])).status).toBe(2);
  });
});
