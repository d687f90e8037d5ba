import { renderBounded, TemplateLimitError } from './_bounded-jinja';
import { DatasetsError } from './errors';
import type { AlpacaRecord } from './schemas';

/**
 * A prompt template as data. `{instruction}` and `{input}` are replaced in one pass (text that
 * contains `{input}` is not substituted again); other braces are kept literally. The response is
 * appended directly after the rendered prompt.
 *
 * @example
 * ```ts
 * const mine: PromptTemplate = { name: 'qa', withInput: 'Q: {instruction}\n{input}\nA:', withoutInput: 'Q: {instruction}\nA:' };
 * ```
 */
export interface PromptTemplate {
  name: string;
  /** Used when the record's `input` is non-empty, and always when `withoutInput` is absent. */
  withInput: string;
  /** Used when `input === ''` (exact, as Stanford Alpaca's `train.py` checks). */
  withoutInput?: string;
  /** The text after which the response starts, e.g. `### Response:` (for response-only masking on ids). */
  responseMarker?: string;
}

/**
 * A prompt and the response that follows it; `prompt + response` is the training text (before EOS).
 *
 * @example
 * ```ts
 * const { prompt, response }: RenderedPrompt = renderPrompt(record, STANFORD_ALPACA_TEMPLATE);
 * ```
 */
export interface RenderedPrompt {
  prompt: string;
  response: string;
}

const HEAD_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n';

/**
 * Stanford Alpaca (`tatsu-lab/stanford_alpaca` `train.py`): a with-input and a no-input prompt,
 * both ending in `### Response:` with no newline after it.
 *
 * @example
 * ```ts
 * renderPrompt({ instruction: 'Say hi.', input: '', output: 'Hi' }, STANFORD_ALPACA_TEMPLATE).prompt;
 * // 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:'
 * ```
 */
export const STANFORD_ALPACA_TEMPLATE: PromptTemplate = {
  name: 'stanford-alpaca',
  withInput: `${HEAD_WITH_INPUT}### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:`,
  withoutInput:
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:',
  responseMarker: '### Response:',
};

/**
 * Unsloth's Alpaca notebooks: one template for every record (an empty input leaves an empty
 * `### Input:` section), with a newline after `### Response:`.
 *
 * @example
 * ```ts
 * renderPrompt({ instruction: 'Say hi.', input: '', output: 'Hi' }, UNSLOTH_ALPACA_TEMPLATE).prompt.endsWith('### Input:\n\n\n### Response:\n'); // true
 * ```
 */
export const UNSLOTH_ALPACA_TEMPLATE: PromptTemplate = {
  name: 'unsloth-alpaca',
  withInput: `${HEAD_WITH_INPUT}### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n`,
  responseMarker: '### Response:\n',
};

/**
 * Renders an Alpaca record with a template.
 *
 * @example
 * ```ts
 * const { prompt, response } = renderPrompt(
 *   { instruction: 'Add.', input: '2 3', output: '5' },
 *   UNSLOTH_ALPACA_TEMPLATE,
 * );
 * response; // '5'
 * prompt.endsWith('### Input:\n2 3\n\n### Response:\n'); // true
 * ```
 */
export function renderPrompt(
  record: Pick<AlpacaRecord, 'instruction' | 'output'> & { input?: string },
  template: PromptTemplate,
): RenderedPrompt {
  const input = record.input ?? '';
  const text =
    input === '' && template.withoutInput !== undefined
      ? template.withoutInput
      : template.withInput;
  const prompt = text.replace(/\{(instruction|input)\}/g, (_, key: string) =>
    key === 'instruction' ? record.instruction : input,
  );
  return { prompt, response: record.output };
}

/**
 * A chat message for {@link renderChatTemplate}.
 *
 * @example
 * ```ts
 * const messages: ChatMessage[] = [{ role: 'user', content: 'Hello there' }];
 * ```
 */
export interface ChatMessage {
  role: string;
  content: string;
}

/**
 * The parts of a Hugging Face `tokenizer_config.json` that chat rendering reads.
 *
 * @example
 * ```ts
 * const config = JSON.parse(readFileSync('tokenizer_config.json', 'utf8')) as TokenizerConfigLike;
 * ```
 */
export interface TokenizerConfigLike {
  chat_template?: string | { name: string; template: string }[] | null;
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  [key: string]: unknown;
}

/**
 * Options of {@link renderChatTemplate}. A chat template is code from a downloaded file, so its
 * rendering is bounded: `maxTemplateSteps` evaluated nodes (a `range(n)` counts n) and
 * `maxTemplateOutput` characters for the output and for every string, list or dict built on the
 * way. Raise them only for templates you trust.
 *
 * @example
 * ```ts
 * renderChatTemplate(config, messages, { addGenerationPrompt: true, source: 'models/tinyllama/tokenizer_config.json' });
 * ```
 */
export interface ChatTemplateOptions {
  /** Append the assistant header so the model continues as the assistant (default false). */
  addGenerationPrompt?: boolean;
  /** Which named template to use when `chat_template` is a list (default `'default'`). */
  templateName?: string;
  /** Extra variables for the template (e.g. `tools`, `date_string`). */
  variables?: Record<string, unknown>;
  /**
   * Most interpreter steps: every evaluated expression or statement counts 1, `range(n)` counts
   * n before it allocates (default 1,000,000; a chat of 100 turns takes a few thousand).
   */
  maxTemplateSteps?: number;
  /**
   * Most characters of the rendered text, and of any value the template builds (lists and dicts
   * count their contents, a list shared k times counts k times); `indent`, `join`, `replace` and
   * `tojson` are checked before they run. Default: 1 MiB (1,048,576), or 4 × the characters of
   * the messages and variables if that is more.
   */
  maxTemplateOutput?: number;
  /** Where the tokenizer config was read from, named in error hints (default `'tokenizer_config.json'`). */
  source?: string;
}

/** Default {@link ChatTemplateOptions.maxTemplateSteps}. */
const DEFAULT_TEMPLATE_STEPS = 1_000_000;
/** Floor of the default {@link ChatTemplateOptions.maxTemplateOutput}. */
const DEFAULT_TEMPLATE_OUTPUT = 1 << 20;

/** Characters of strings in a plain JS value (numbers and the like count 1; depth-capped). */
function inputSize(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length;
  if (value === null || typeof value !== 'object' || depth > 64) return 1;
  let size = 1;
  for (const [key, inner] of Object.entries(value))
    size += key.length + inputSize(inner, depth + 1);
  return size;
}

function limitOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || !(Number.isSafeInteger(value) || value === Number.POSITIVE_INFINITY)) {
    throw new DatasetsError(
      'INVALID_ARGUMENT',
      `cannot render a chat template: expected ${name} to be a positive integer (or Infinity), got ${value}`,
    );
  }
  return value;
}

function tokenText(token: TokenizerConfigLike['bos_token']): string | undefined {
  if (token === null || token === undefined) return undefined;
  return typeof token === 'string' ? token : token.content;
}

/**
 * Renders a chat with the Jinja `chat_template` of a `tokenizer_config.json`, through
 * `@huggingface/jinja` (an interpreter: no `eval`, no file or network access). Same text as
 * transformers' `apply_chat_template(messages, tokenize=False)`. The template is untrusted code,
 * so rendering is bounded (see {@link ChatTemplateOptions}: steps, output size, nesting of
 * evaluations ≤ 1,000); past a bound it throws `DatasetsError` `TEMPLATE_FAILED` quickly.
 *
 * @example
 * ```ts
 * const config = JSON.parse(readFileSync('tinyllama/tokenizer_config.json', 'utf8'));
 * renderChatTemplate(config, [{ role: 'user', content: 'Hello there' }], { addGenerationPrompt: true });
 * // '<|user|>\nHello there</s>\n<|assistant|>\n'
 * ```
 */
export function renderChatTemplate(
  tokenizerConfig: TokenizerConfigLike,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): string {
  const raw = tokenizerConfig.chat_template;
  let source: string | undefined;
  if (typeof raw === 'string') source = raw;
  else if (Array.isArray(raw)) {
    const wanted = options.templateName ?? 'default';
    source = raw.find((t) => t.name === wanted)?.template;
    if (source === undefined) {
      throw new DatasetsError(
        'TEMPLATE_FAILED',
        `no chat template named "${wanted}": expected one of ${raw.map((t) => `"${t.name}"`).join(', ')}, got "${wanted}"`,
      );
    }
  }
  if (source === undefined) {
    throw new DatasetsError(
      'TEMPLATE_FAILED',
      'cannot render a chat: expected tokenizer_config.json to have a chat_template, got none\nHint: base models usually have none; use an Alpaca PromptTemplate with renderPrompt instead.',
    );
  }
  const variables = {
    ...options.variables,
    messages: messages.map((m) => ({ ...m })),
    add_generation_prompt: options.addGenerationPrompt ?? false,
    bos_token: tokenText(tokenizerConfig.bos_token) ?? '',
    eos_token: tokenText(tokenizerConfig.eos_token) ?? '',
    unk_token: tokenText(tokenizerConfig.unk_token) ?? '',
    pad_token: tokenText(tokenizerConfig.pad_token) ?? '',
  };
  const maxSteps = limitOption(
    'maxTemplateSteps',
    options.maxTemplateSteps,
    DEFAULT_TEMPLATE_STEPS,
  );
  const maxOutput = limitOption(
    'maxTemplateOutput',
    options.maxTemplateOutput,
    Math.max(DEFAULT_TEMPLATE_OUTPUT, 4 * inputSize(variables)),
  );
  try {
    return renderBounded(source, variables, { maxSteps, maxOutput });
  } catch (cause) {
    if (cause instanceof TemplateLimitError) {
      const option =
        cause.limit === 'steps'
          ? 'maxTemplateSteps'
          : cause.limit === 'output'
            ? 'maxTemplateOutput'
            : undefined;
      throw new DatasetsError(
        'TEMPLATE_FAILED',
        `cannot render the chat template: ${cause.message}\nHint: the template comes from ${options.source ?? 'tokenizer_config.json'}; ${option ? `raise ${option} only for templates you trust` : 'a template you trust does not recurse this deep'}.`,
        { cause },
      );
    }
    throw new DatasetsError(
      'TEMPLATE_FAILED',
      `cannot render the chat template: expected a Jinja template @huggingface/jinja supports, got an error (${(cause as Error).message})`,
      { cause },
    );
  }
}
