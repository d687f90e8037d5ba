// A chat template is code from a downloaded tokenizer_config.json. @huggingface/jinja interprets it
// (no eval, no access to JavaScript objects) but has no step limit: `range(10**9)` allocated a
// billion-element array, nested loops or a recursive macro ran until the stack or the patience
// gave out, and a few filters turn small inputs into huge strings in one call (`indent(width)`,
// `join(sep)`, `replace('', s)`, `tojson(indent=…)` over a list nested into itself 30 times). This
// renders through a subclass of its public `Interpreter` that
//   - counts every evaluated node against a step budget (`range(n)` counts n, before allocating;
//     a loop iteration counts 20 and a call 10, about their cost in the interpreter),
//   - bounds the nesting of evaluations (macro recursion) well below the JavaScript stack,
//   - checks the size of every value a node produces (strings by length, lists and dicts by the
//     size of their contents, a list shared k times counted k times), and before the filters above
//     run, the size their result can reach (their operand and arguments are evaluated once, here,
//     and handed to the interpreter as values),
// so a hostile template ends in a `TemplateLimitError` within a bounded time and memory.

import { Environment, Interpreter, Template } from '@huggingface/jinja';

type RuntimeValue = ReturnType<Interpreter['evaluate']>;
type Node = NonNullable<Parameters<Interpreter['evaluate']>[0]>;

/** The AST fields read here (the node classes are not exported by @huggingface/jinja). */
interface AstNode {
  type: string;
  value?: unknown;
  operand?: AstNode;
  filter?: AstNode;
  callee?: AstNode;
  object?: AstNode;
  property?: AstNode;
  args?: AstNode[];
  argument?: AstNode;
  key?: AstNode;
  body?: AstNode[];
}

/**
 * Nested evaluations allowed. A macro calling itself nests 2 per level and overflows Node's
 * default stack near 1,000, so 400 (200 macro levels) leaves room; real templates nest < 40.
 */
export const MAX_TEMPLATE_NESTING = 400;
/**
 * Steps one loop iteration counts besides its body: @huggingface/jinja builds a `loop` object and
 * a scope per iteration, about 7 µs, as much as ~20 evaluated expressions.
 */
const LOOP_ITERATION_STEPS = 20;
/** Steps a call (`f(x)`, `{% call %}`) counts besides its arguments: a macro call costs ~5 µs. */
const CALL_STEPS = 10;
/** Largest `tojson(indent=…)` honoured: chat templates use 2 or 4. */
const MAX_JSON_INDENT = 64;
/** A node carrying an already evaluated value (see `precomputed`). */
const VALUE_NODE = 'QloraValue';
/** A node put first in every loop body: charges one iteration, renders nothing. */
const ITERATION_NODE = 'QloraIteration';

export interface TemplateLimits {
  maxSteps: number;
  maxOutput: number;
}

/** A bound of {@link TemplateLimits} was exceeded; the caller turns it into a DatasetsError. */
export class TemplateLimitError extends Error {
  constructor(
    readonly limit: 'steps' | 'output' | 'nesting',
    message: string,
  ) {
    super(message);
  }
}

const isContainer = (type: string): boolean =>
  type === 'ArrayValue' ||
  type === 'TupleValue' ||
  type === 'ObjectValue' ||
  type === 'KeywordArgumentsValue' ||
  type === 'NamespaceValue';

class BoundedInterpreter extends Interpreter {
  steps = 0;
  private nesting = 0;
  /** Sizes of immutable lists and dicts (namespaces change, so containers holding one are not cached). */
  private readonly sizes = new WeakMap<object, { size: number; depth: number }>();
  /** Each `For` node with an iteration counter first in its body. */
  private readonly countedLoops = new WeakMap<AstNode, AstNode>();

  constructor(
    env: Environment,
    readonly limits: TemplateLimits,
  ) {
    super(env);
  }

  /** Adds `n` steps (range() charges its length before it allocates). */
  charge(n: number, what: string): void {
    this.steps += n;
    if (this.steps > this.limits.maxSteps) {
      throw new TemplateLimitError(
        'steps',
        `expected at most ${this.limits.maxSteps} steps, got more (${what})`,
      );
    }
  }

  override evaluate(statement: Node | undefined, environment: Environment): RuntimeValue {
    const node = statement as AstNode | undefined;
    if (node?.type === VALUE_NODE) return node.value as RuntimeValue;
    if (node?.type === ITERATION_NODE) {
      this.charge(LOOP_ITERATION_STEPS, 'a loop too long for a chat');
      return super.evaluate({ type: 'Comment' } as Node, environment); // renders as nothing
    }
    this.charge(1, 'a loop, recursion or range() too long for a chat');
    if (++this.nesting > MAX_TEMPLATE_NESTING) {
      throw new TemplateLimitError(
        'nesting',
        `expected evaluations nested at most ${MAX_TEMPLATE_NESTING} deep, got deeper (a recursive macro?)`,
      );
    }
    try {
      const value = this.evaluateGuarded(node, statement, environment);
      this.checkSize(value);
      return value;
    } finally {
      this.nesting--;
    }
  }

  private evaluateGuarded(
    node: AstNode | undefined,
    statement: Node | undefined,
    environment: Environment,
  ): RuntimeValue {
    if (node?.type === 'CallExpression' || node?.type === 'CallStatement') {
      this.charge(CALL_STEPS, 'too many calls for a chat (a recursive macro?)');
    }
    if (node?.type === 'For' && node.body) {
      // An empty loop body evaluates nothing, yet each iteration costs: charge it.
      let counted = this.countedLoops.get(node);
      if (!counted) {
        counted = { ...node, body: [{ type: ITERATION_NODE }, ...node.body] };
        this.countedLoops.set(node, counted);
      }
      return super.evaluate(counted as unknown as Node, environment);
    }
    if (node?.type === 'FilterExpression' && node.operand && node.filter) {
      if (!isGuardedFilter(node.filter)) return super.evaluate(statement, environment);
      const operand = this.evaluate(node.operand as Node, environment);
      const filter = this.precomputeCall(node.filter, environment);
      this.checkFilter(operand, filter);
      return super.evaluate(
        { ...node, operand: precomputed(operand), filter } as unknown as Node,
        environment,
      );
    }
    if (node?.type === 'FilterStatement' && node.filter && node.body) {
      if (!isGuardedFilter(node.filter)) return super.evaluate(statement, environment);
      // `{% filter indent(n) %}…{% endfilter %}`: render the body as the interpreter would
      // (a block in the same scope), then apply the filter as an expression.
      const body = { type: 'Program', body: node.body } as unknown as Node;
      const rendered = this.evaluate(body, environment);
      return this.evaluate(
        {
          type: 'FilterExpression',
          operand: precomputed(rendered),
          filter: node.filter,
        } as unknown as Node,
        environment,
      );
    }
    if (
      node?.type === 'CallExpression' &&
      node.callee?.type === 'MemberExpression' &&
      node.callee.object &&
      (node.callee.property?.type === 'Identifier' ||
        node.callee.property?.type === 'StringLiteral') &&
      node.callee.property.value === 'replace'
    ) {
      // `text.replace(old, new)`: the method form of the replace filter.
      const object = this.evaluate(node.callee.object as Node, environment);
      const call = this.precomputeCall(node, environment);
      if (object.type === 'StringValue') {
        this.checkFilter(object, { ...call, callee: { type: 'Identifier', value: 'replace' } });
      }
      return super.evaluate(
        {
          ...call,
          callee: { ...node.callee, object: precomputed(object) },
        } as unknown as Node,
        environment,
      );
    }
    return super.evaluate(statement, environment);
  }

  /** A call node whose argument expressions are replaced by their values (evaluated once, here). */
  private precomputeCall(call: AstNode, environment: Environment): AstNode {
    if (call.type !== 'CallExpression' || !call.args) return call;
    const args = call.args.map((arg): AstNode => {
      if (arg.type === 'KeywordArgumentExpression' && arg.value) {
        return { ...arg, value: precomputed(this.evaluate(arg.value as Node, environment)) };
      }
      if (
        (arg.type === 'SpreadExpression' || arg.type === 'KeywordSpreadExpression') &&
        arg.argument
      ) {
        return { ...arg, argument: precomputed(this.evaluate(arg.argument as Node, environment)) };
      }
      return precomputed(this.evaluate(arg as Node, environment));
    });
    return { ...call, args };
  }

  /** Refuses a guarded filter call whose result could exceed the output bound. */
  private checkFilter(operand: RuntimeValue, filter: AstNode): void {
    const name = filterName(filter);
    const { positional, keyword } = argumentValues(filter);
    const arg = (index: number, key: string): RuntimeValue | undefined =>
      positional[index] ?? keyword.get(key);
    const int = (value: RuntimeValue | undefined): number =>
      value?.type === 'IntegerValue' ? (value.value as number) : 0;
    const text = (value: RuntimeValue | undefined): string =>
      value?.type === 'StringValue' ? (value.value as string) : '';
    let estimate = 0;
    if (name === 'indent' && operand.type === 'StringValue') {
      const source = operand.value as string;
      const lines = source.split('\n').length;
      estimate = source.length + Math.max(0, int(arg(0, 'width'))) * lines;
    } else if (name === 'join') {
      const items: RuntimeValue[] =
        operand.type === 'StringValue'
          ? []
          : isContainer(operand.type) && Array.isArray(operand.value)
            ? (operand.value as RuntimeValue[])
            : [];
      const count =
        operand.type === 'StringValue' ? (operand.value as string).length : items.length;
      const itemChars = items.reduce(
        (sum, item) => sum + (item.type === 'StringValue' ? (item.value as string).length : 24),
        operand.type === 'StringValue' ? count : 0,
      );
      estimate = itemChars + Math.max(0, count - 1) * text(arg(0, 'separator')).length;
    } else if (name === 'replace' && operand.type === 'StringValue') {
      const source = operand.value as string;
      const old = text(arg(0, 'old'));
      const replacement = text(arg(1, 'new'));
      let occurrences = old === '' ? source.length + 1 : source.split(old).length - 1;
      const count = arg(2, 'count');
      if (count?.type === 'IntegerValue' && (count.value as number) >= 0) {
        occurrences = Math.min(occurrences, count.value as number);
      }
      estimate = source.length + occurrences * replacement.length;
    } else if (name === 'tojson') {
      const indent = int(keyword.get('indent'));
      if (indent > MAX_JSON_INDENT) {
        throw new TemplateLimitError(
          'output',
          `expected tojson(indent=…) of at most ${MAX_JSON_INDENT}, got ${indent}`,
        );
      }
      const { size, depth } = this.measure(operand, 0);
      estimate = size * (1 + Math.max(0, indent) * (depth + 1));
    }
    if (estimate > this.limits.maxOutput) {
      throw new TemplateLimitError(
        'output',
        `expected output and values of at most ${this.limits.maxOutput} characters, got ${name}() building ${estimate}`,
      );
    }
  }

  checkSize(value: RuntimeValue): void {
    const { size } = this.measure(value, 0);
    if (size > this.limits.maxOutput) {
      throw new TemplateLimitError(
        'output',
        `expected output and values of at most ${this.limits.maxOutput} characters, got ${size === Number.POSITIVE_INFINITY ? 'one nested too deep to measure' : `one of ${size}`}`,
      );
    }
  }

  /**
   * Characters of a string; 1 + the contents of a list or dict (keys count their length), with a
   * shared sub-list counted each time it occurs (what `tojson` or printing would write). Stops
   * early once over the bound. Depth is the nesting of lists and dicts.
   */
  private measure(value: RuntimeValue, depth: number): { size: number; depth: number } {
    if (value.type === 'StringValue') return { size: (value.value as string).length, depth: 0 };
    if (!isContainer(value.type)) return { size: 1, depth: 0 };
    const cached = this.sizes.get(value);
    if (cached) return cached;
    if (depth > MAX_TEMPLATE_NESTING) return { size: Number.POSITIVE_INFINITY, depth };
    let size = 1;
    let deepest = 0;
    let mutable = value.type === 'NamespaceValue';
    const add = (child: RuntimeValue, keyLength: number): boolean => {
      const inner = this.measure(child, depth + 1);
      size += keyLength + inner.size;
      deepest = Math.max(deepest, inner.depth + 1);
      if (isContainer(child.type) && !this.sizes.has(child)) mutable = true;
      return size > this.limits.maxOutput;
    };
    const contents = value.value;
    if (Array.isArray(contents)) {
      for (const child of contents as RuntimeValue[]) if (add(child, 0)) break;
    } else if (contents instanceof Map) {
      for (const [key, child] of contents as Map<string, RuntimeValue>) {
        if (add(child, key.length)) break;
      }
    }
    const result = { size, depth: deepest };
    if (!mutable && size <= this.limits.maxOutput) this.sizes.set(value, result);
    return result;
  }
}

const GUARDED_FILTERS = new Set(['indent', 'join', 'replace', 'tojson']);

function filterName(filter: AstNode): string | undefined {
  if (filter.type === 'Identifier') return filter.value as string;
  if (filter.type === 'CallExpression' && filter.callee?.type === 'Identifier') {
    return filter.callee.value as string;
  }
  return undefined;
}

function isGuardedFilter(filter: AstNode): boolean {
  return GUARDED_FILTERS.has(filterName(filter) ?? '');
}

function precomputed(value: RuntimeValue): AstNode {
  return { type: VALUE_NODE, value };
}

/** The values of a precomputed call's arguments (spread arguments expanded). */
function argumentValues(call: AstNode): {
  positional: RuntimeValue[];
  keyword: Map<string, RuntimeValue>;
} {
  const positional: RuntimeValue[] = [];
  const keyword = new Map<string, RuntimeValue>();
  for (const arg of call.args ?? []) {
    if (arg.type === VALUE_NODE) positional.push(arg.value as RuntimeValue);
    else if (arg.type === 'KeywordArgumentExpression' && arg.key && arg.value) {
      keyword.set(arg.key.value as string, (arg.value as AstNode).value as RuntimeValue);
    } else if (arg.type === 'SpreadExpression' && arg.argument) {
      const spread = arg.argument.value as RuntimeValue;
      if (Array.isArray(spread.value)) positional.push(...(spread.value as RuntimeValue[]));
    } else if (arg.type === 'KeywordSpreadExpression' && arg.argument) {
      const spread = arg.argument.value as RuntimeValue;
      if (spread.value instanceof Map) {
        for (const [key, value] of spread.value as Map<string, RuntimeValue>)
          keyword.set(key, value);
      }
    }
  }
  return { positional, keyword };
}

/** Python's `strftime` for the directives @huggingface/jinja supports, in English like Python's C locale. */
function strftimeNow(format: unknown): string {
  const now = new Date();
  const two = (n: number): string => String(n).padStart(2, '0');
  const month = (style: 'short' | 'long'): string =>
    new Intl.DateTimeFormat('en-US', { month: style }).format(now);
  return String(format).replace(/%[YmdbBHM%]/g, (token) => {
    switch (token) {
      case '%Y':
        return String(now.getFullYear());
      case '%m':
        return two(now.getMonth() + 1);
      case '%d':
        return two(now.getDate());
      case '%b':
        return month('short');
      case '%B':
        return month('long');
      case '%H':
        return two(now.getHours());
      case '%M':
        return two(now.getMinutes());
      default:
        return '%';
    }
  });
}

/**
 * Parses `source` with @huggingface/jinja's `Template` (same lexer options) and renders it with
 * `variables` under `limits`. The globals are those `Template.render` defines, with a `range`
 * that charges its length to the step budget first. Throws {@link TemplateLimitError} past a
 * bound; other errors are the interpreter's own.
 */
export function renderBounded(
  source: string,
  variables: Record<string, unknown>,
  limits: TemplateLimits,
): string {
  const program = new Template(source).parsed;
  const env = new Environment();
  const interpreter = new BoundedInterpreter(env, limits);
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    raise_exception: (message: unknown) => {
      throw new Error(String(message));
    },
    range: (...args: unknown[]) => range(interpreter, args),
    strftime_now: strftimeNow,
    True: true,
    False: false,
    None: null,
  };
  for (const [key, value] of Object.entries(globals)) env.set(key, value);
  for (const [key, value] of Object.entries(variables)) env.set(key, value);
  const output = interpreter.run(program as unknown as Parameters<Interpreter['run']>[0]);
  interpreter.checkSize(output);
  return output.value as string;
}

/** Python's `range(stop)` / `range(start, stop[, step])` on integers, charged before it allocates. */
function range(interpreter: BoundedInterpreter, args: unknown[]): number[] {
  if (args.length < 1 || args.length > 3 || !args.every((a) => Number.isSafeInteger(a))) {
    throw new Error(`range() expected 1 to 3 integers, got (${args.map(String).join(', ')})`);
  }
  const [first, second, third] = args as number[];
  const start = second === undefined ? 0 : (first as number);
  const stop = second === undefined ? (first as number) : second;
  const step = third ?? 1;
  if (step === 0) throw new Error('range() step must not be zero');
  const length = Math.max(0, Math.ceil((stop - start) / step));
  interpreter.charge(length, `range() of ${length} numbers`);
  return Array.from({ length }, (_, i) => start + i * step);
}
