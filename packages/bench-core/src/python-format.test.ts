import { readFileSync } from 'node:fs';
import { fixturePath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import {
  dumpsPythonJson,
  formatPythonFloat,
  type PythonJsonValue,
  sanitizePythonList,
} from './python-format';
import { isPythonSpace, moveTrailingWhitespace, pythonStrip } from './python-text';

const fixture = JSON.parse(readFileSync(fixturePath('bench-core', 'python-text.json'), 'utf8')) as {
  floatRepr: [string, string][];
  whitespace: number[];
  doc: PythonJsonValue;
  dumps: { indent2: string; compact: string };
};

function fromHex(hex: string): number {
  const bytes = Uint8Array.from(hex.match(/../g)!.map((b) => Number.parseInt(b, 16)));
  return new DataView(bytes.buffer).getFloat64(0, true);
}

describe('Python text compatibility (CPython 3.11 vectors)', () => {
  it('formats floats like repr()', () => {
    for (const [hex, repr] of fixture.floatRepr) expect(formatPythonFloat(fromHex(hex))).toBe(repr);
  });

  it('knows Python whitespace', () => {
    const expected = new Set(fixture.whitespace);
    for (let cp = 0; cp <= 0x3000; cp++) {
      expect(isPythonSpace(String.fromCodePoint(cp)), `U+${cp.toString(16)}`).toBe(
        expected.has(cp),
      );
    }
    expect(pythonStrip('\ufeff x \u0085')).toBe('\ufeff x');
  });

  it('dumps JSON like json.dumps(ensure_ascii=False)', () => {
    expect(dumpsPythonJson(fixture.doc, { indent: 2 })).toBe(fixture.dumps.indent2);
    expect(dumpsPythonJson(fixture.doc)).toBe(fixture.dumps.compact);
  });

  it('sanitizes responses like sanitize_list', () => {
    expect(sanitizePythonList([[[-1, false]], [[-0.5, true]]])).toEqual([
      [['-1.0', 'False']],
      [['-0.5', 'True']],
    ]);
  });

  it('moves trailing context whitespace to the continuation', () => {
    expect(moveTrailingWhitespace({ context: 'Answer: \n', continuation: 'A' })).toEqual({
      context: 'Answer:',
      continuation: ' \nA',
    });
    expect(moveTrailingWhitespace({ context: 'Answer:', continuation: ' A' })).toEqual({
      context: 'Answer:',
      continuation: ' A',
    });
  });
});
