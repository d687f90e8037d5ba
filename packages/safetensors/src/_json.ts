import { quote } from './_messages';
import { SafetensorsError } from './errors';

/** A JSON number kept as its source text, so integers above 2^53 are not silently rounded. */
export class JsonNumber {
  constructor(readonly raw: string) {}
}

/** A JSON object as its ordered key/value pairs (keys are unique: duplicates are rejected). */
export class JsonObject {
  constructor(readonly entries: Array<[string, JsonValue]>) {}
}

export type JsonValue = string | boolean | null | JsonNumber | JsonObject | JsonValue[];

/** Deeper than any real header; bounded so a hostile `[[[[…` cannot overflow the stack. */
const MAX_DEPTH = 64;

/**
 * A strict RFC 8259 parser for safetensors headers. Unlike `JSON.parse` it rejects duplicate
 * keys (JSON.parse silently keeps the last one, which would hide a second tensor of the same
 * name), keeps numbers as text, and bounds nesting. Like serde_json it accepts surrounding
 * whitespace (the header's space padding) and rejects lone surrogate escapes.
 */
export function parseStrictJson(text: string): JsonValue {
  let pos = 0;

  const fail = (what: string): never => {
    const near = text.slice(Math.max(0, pos - 20), pos + 20);
    throw new SafetensorsError(
      'INVALID_HEADER_JSON',
      'header-json',
      `Header JSON is invalid at character ${pos}: expected ${what}, got ${quote(near, 40)}. ` +
        'The header must be one JSON object (UTF-8), optionally padded with spaces.',
    );
  };

  const skipWhitespace = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else return;
    }
  };

  const parseString = (): string => {
    // pos is at the opening quote
    pos++;
    let out = '';
    let chunkStart = pos;
    for (;;) {
      if (pos >= text.length) fail('a closing quote');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(chunkStart, pos);
        pos++;
        return out;
      }
      if (c < 0x20) fail('no raw control character in a string');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(chunkStart, pos);
      pos++;
      const e = text[pos];
      pos++;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const unit = readHex4();
          if (unit >= 0xd800 && unit <= 0xdbff) {
            if (text[pos] !== '\\' || text[pos + 1] !== 'u') fail('a low surrogate escape');
            pos += 2;
            const low = readHex4();
            if (low < 0xdc00 || low > 0xdfff) fail('a low surrogate escape');
            out += String.fromCharCode(unit, low);
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            fail('no lone low surrogate');
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          pos--;
          fail('a valid escape');
      }
      chunkStart = pos;
    }
  };

  const readHex4 = (): number => {
    const hex = text.slice(pos, pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('4 hex digits');
    pos += 4;
    return Number.parseInt(hex, 16);
  };

  const numberPattern = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

  const parseValue = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail(`nesting of at most ${MAX_DEPTH} levels`);
    skipWhitespace();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const entries: Array<[string, JsonValue]> = [];
      const seen = new Set<string>();
      skipWhitespace();
      if (text[pos] === '}') {
        pos++;
        return new JsonObject(entries);
      }
      for (;;) {
        skipWhitespace();
        if (text[pos] !== '"') fail('a key string');
        const keyAt = pos;
        const key = parseString();
        if (seen.has(key)) {
          pos = keyAt;
          throw new SafetensorsError(
            'INVALID_HEADER_JSON',
            'no-duplicate-keys',
            `Header repeats the key ${quote(key)} at character ${keyAt}: expected each tensor ` +
              'name (and each field) once, got it twice. A JSON.parse-based reader would silently keep the last one.',
            { tensor: key },
          );
        }
        seen.add(key);
        skipWhitespace();
        if (text[pos] !== ':') fail("':'");
        pos++;
        entries.push([key, parseValue(depth + 1)]);
        skipWhitespace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return new JsonObject(entries);
        }
        fail("',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const items: JsonValue[] = [];
      skipWhitespace();
      if (text[pos] === ']') {
        pos++;
        return items;
      }
      for (;;) {
        items.push(parseValue(depth + 1));
        skipWhitespace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return items;
        }
        fail("',' or ']'");
      }
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('false', pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith('null', pos)) {
      pos += 4;
      return null;
    }
    numberPattern.lastIndex = pos;
    const match = numberPattern.exec(text);
    if (match === null) return fail('a JSON value');
    pos += match[0].length;
    return new JsonNumber(match[0]);
  };

  const value = parseValue(0);
  skipWhitespace();
  if (pos !== text.length) fail('the end of the header (only spaces may follow the object)');
  return value;
}
