/**
 * A JSON value that keeps number and string tokens exactly as written, so a config.json can be
 * rewritten the way transformers writes it (`json.dumps(indent=2, sort_keys=True)`) without
 * turning Python's `6.0` into `6` or `1e-05` into `0.00001`.
 */
export type RawJson =
  | { type: 'raw'; text: string } // number, string, true, false, null: the source token
  | { type: 'array'; items: RawJson[] }
  | { type: 'object'; entries: Array<[string, RawJson]> };

/** Parses JSON text into a {@link RawJson} tree. Throws SyntaxError (with offset) on bad input. */
export function parseRawJson(text: string): RawJson {
  // Validate first with the engine's parser: the scanner below then only has to split tokens.
  JSON.parse(text);
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const stringToken = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return text.slice(start, i);
  };
  const value = (): RawJson => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: Array<[string, RawJson]> = [];
      ws();
      if (text[i] === '}') {
        i++;
        return { type: 'object', entries };
      }
      for (;;) {
        ws();
        const key = JSON.parse(stringToken()) as string;
        ws();
        i++; // ':'
        entries.push([key, value()]);
        ws();
        if (text[i++] === '}') return { type: 'object', entries };
      }
    }
    if (c === '[') {
      i++;
      const items: RawJson[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { type: 'array', items };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i++] === ']') return { type: 'array', items };
      }
    }
    if (c === '"') return { type: 'raw', text: stringToken() };
    const start = i;
    while (i < text.length && !',]} \t\n\r'.includes(text[i] as string)) i++;
    return { type: 'raw', text: text.slice(start, i) };
  };
  return value();
}

/** Python `json.dumps(value, indent=2, sort_keys=True)` over a {@link RawJson} tree. */
export function dumpRawJson(value: RawJson, indent = 2, depth = 0): string {
  if (value.type === 'raw') return value.text;
  const pad = ' '.repeat(indent * (depth + 1));
  const end = ' '.repeat(indent * depth);
  if (value.type === 'array') {
    if (value.items.length === 0) return '[]';
    return `[\n${value.items.map((v) => pad + dumpRawJson(v, indent, depth + 1)).join(',\n')}\n${end}]`;
  }
  if (value.entries.length === 0) return '{}';
  // Python sorts keys by code point; JS string comparison is by UTF-16 unit (same for BMP keys).
  const sorted = [...value.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{\n${sorted.map(([k, v]) => `${pad}${pythonString(k)}: ${dumpRawJson(v, indent, depth + 1)}`).join(',\n')}\n${end}}`;
}

/** A string as Python's json.dumps (ensure_ascii=True) writes it. */
export function pythonString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Builds a RawJson tree from plain data, numbers written as Python floats when `floats` lists the key. */
export function toRawJson(
  value: unknown,
  floatKeys: ReadonlySet<string> = new Set(),
  key = '',
): RawJson {
  if (Array.isArray(value))
    return { type: 'array', items: value.map((v) => toRawJson(v, floatKeys)) };
  if (value !== null && typeof value === 'object') {
    return {
      type: 'object',
      entries: Object.entries(value).map(([k, v]) => [k, toRawJson(v, floatKeys, k)]),
    };
  }
  if (typeof value === 'string') return { type: 'raw', text: pythonString(value) };
  if (typeof value === 'number' && floatKeys.has(key) && Number.isInteger(value)) {
    return { type: 'raw', text: `${value}.0` };
  }
  return { type: 'raw', text: JSON.stringify(value ?? null) };
}
