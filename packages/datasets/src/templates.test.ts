// Chat templates are code from downloaded files: renderChatTemplate bounds steps, nesting and
// the size of every value. Real templates must render exactly as @huggingface/jinja's own
// (unbounded) Template.render does; hostile ones must end in TEMPLATE_FAILED within a second.

import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { sharedDataPath } from '@qlora/test-utils';
import { describe, expect, it } from 'vitest';
import { DatasetsError } from './errors';
import { type ChatMessage, type ChatTemplateOptions, renderChatTemplate } from './templates';

const tinyllama = JSON.parse(
  readFileSync(sharedDataPath('tokenizers', 'tinyllama', 'tokenizer_config.json'), 'utf8'),
) as { chat_template: string };

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: ' 4 ' },
  { role: 'user', content: 'And "3+3"?\nThanks.' },
];
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'add',
      description: 'Adds two numbers',
      parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } },
    },
  },
];

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// Every construct the bounded interpreter treats specially, in one template: loops with
// loop.*, namespaces, macros with defaults and `caller`, range(), the guarded filters
// (indent, join, replace, tojson with indent) as filters, method and filter blocks.
const FEATURES = `{%- set ns = namespace(count=0, roles=[]) -%}
{%- macro tag(name, body='') -%}<{{ name }}>{{ body }}</{{ name }}>{%- endmacro -%}
{%- macro box() -%}[{{ caller() }}]{%- endmacro -%}
{%- if tools %}{{ tag('tools', tools|tojson(indent=2)) }}
{{ tools|map(attribute='function')|map(attribute='name')|join(', ') }}
{% endif -%}
{%- for message in messages if message.role != 'system' -%}
{%- set ns.count = ns.count + 1 -%}
{%- set ns.roles = ns.roles + [message.role] -%}
{{ loop.index }}/{{ loop.length }} {{ message.role|upper }}: {{ message.content|trim|replace('"', "'") }}
{{ message.content.replace('+', ' plus ')|indent(4, true) }}
{% call box() %}{{ message.content|length }}{% endcall %}
{% endfor -%}
{%- filter upper %}{{ ns.count }} turns: {{ ns.roles|join('>') }}{% endfilter %}
{% filter indent(2, true) %}a
b{% endfilter %}
{{ range(3)|list|tojson }} {{ range(2, 11, 3)|join(',') }} {{ range(5, 0, -2)|join(',') }}
{%- if add_generation_prompt %}{{ tag('assistant') }}{% endif %}`;

const TEMPLATES: [name: string, template: string][] = [
  ['TinyLlama (tokenizer_config.json of shared data)', tinyllama.chat_template],
  ['ChatML', CHATML],
  ['Llama 2 (system folded into the first turn)', LLAMA2],
  ['every construct the bounded interpreter handles', FEATURES],
];

const SPECIAL = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '' };

function libraryRender(template: string, messages: ChatMessage[], generation: boolean): string {
  return new Template(template).render({
    tools: TOOLS,
    messages,
    add_generation_prompt: generation,
    ...SPECIAL,
  });
}

function render(template: string, options: ChatTemplateOptions = {}, messages = CHAT): string {
  return renderChatTemplate({ chat_template: template, ...SPECIAL }, messages, options);
}

/** The DatasetsError a render throws, and how long it took. */
function failure(template: string, options: ChatTemplateOptions = {}, messages = CHAT) {
  const start = performance.now();
  try {
    render(template, options, messages);
  } catch (error) {
    return { error: error as DatasetsError, ms: performance.now() - start };
  }
  throw new Error('expected the template to fail');
}

describe('renderChatTemplate renders real templates exactly as @huggingface/jinja does', () => {
  for (const [name, template] of TEMPLATES) {
    it(name, () => {
      for (const generation of [false, true]) {
        const messages = name.startsWith('Llama 2') ? CHAT.slice(0, 3) : CHAT;
        const expected = libraryRender(template, messages, generation);
        expect(expected.length).toBeGreaterThan(20);
        expect(
          render(
            template,
            { addGenerationPrompt: generation, variables: { tools: TOOLS } },
            messages,
          ),
        ).toBe(expected);
      }
    });
  }

  it('the features template exercises what it claims (a sanity check of the test itself)', () => {
    const text = render(FEATURES, { addGenerationPrompt: true, variables: { tools: TOOLS } });
    expect(text).toContain('<tools>[\n  {\n    "type": "function"');
    expect(text).toContain('\n    What is 2 plus 2?');
    expect(text).toContain('3 TURNS: USER>ASSISTANT>USER');
    expect(text).toContain('  a\n  b');
    expect(text).toContain('[0, 1, 2] 2,5,8 5,3,1');
    expect(text.endsWith('<assistant></assistant>')).toBe(true);
  });

  it('a chat of 2 MB renders (the default output bound scales with the input)', () => {
    const long = [{ role: 'user', content: 'x'.repeat(2_000_000) }];
    expect(render(tinyllama.chat_template, {}, long)).toHaveLength(
      '<|user|>\n'.length + 2_000_000 + '</s>\n'.length,
    );
  });

  it('raising a bound lets a trusted template through', () => {
    const template =
      '{% set ns = namespace(n=0) %}{% for i in range(5000) %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}';
    expect(failure(template, { maxTemplateSteps: 100_000 }).error.message).toMatch(
      /expected at most 100000 steps/,
    );
    expect(render(template, { maxTemplateSteps: 200_000 })).toBe('5000');
  });

  it('strftime_now as Python formats it (English month names)', () => {
    const template = "{{ strftime_now('%Y-%m-%d %H:%M %%') }}|{{ strftime_now('%b %B') }}";
    const [date, months] = render(template).split('|');
    expect(date).toBe(new Template(template.split('|')[0] as string).render({}));
    expect(months).toMatch(/^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [A-Z][a-z]+$/);
  });
});

describe('hostile chat templates fail fast with TEMPLATE_FAILED', () => {
  const steps =
    /expected at most 1000000 steps, got more[\s\S]*Hint: the template comes from tokenizer_config\.json; raise maxTemplateSteps only for templates you trust\./;
  const size =
    /expected output and values of at most 1048576 characters, got[\s\S]*raise maxTemplateOutput only for templates you trust/;
  const cases: [name: string, template: string, message: RegExp][] = [
    [
      'range(10**9): charged before it allocates',
      '{% for i in range(10**9) %}x{% endfor %}',
      /expected at most 1000000 steps, got more \(range\(\) of 1000000000 numbers\)/,
    ],
    [
      'nested loops 10^4 × 10^4 with an empty body',
      '{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}',
      steps,
    ],
    [
      "'x' * 10**9 (the interpreter has no string repetition)",
      "{{ 'x' * 10**9 }}",
      /Unknown operator "\*" between StringValue and IntegerValue/,
    ],
    [
      'a macro recursing through its argument',
      '{% macro f(g, n) %}{{ g(g, n + 1) }}{% endmacro %}{{ f(f, 0) }}',
      /expected evaluations nested at most 400 deep, got deeper \(a recursive macro\?\)[\s\S]*Hint: the template comes from tokenizer_config\.json/,
    ],
    [
      'a macro calling itself twice per level, 40 levels (2^40 calls)',
      '{% macro f(g, n) %}{% if n > 0 %}{{ g(g, n - 1) }}{{ g(g, n - 1) }}{% endif %}{% endmacro %}{{ f(f, 40) }}',
      steps,
    ],
    [
      'a string doubled 40 times',
      "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
      size,
    ],
    [
      'a list nested into itself 30 times, then tojson (2^30 leaves)',
      '{% set ns = namespace(a=[1]) %}{% for i in range(30) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a|tojson }}',
      /got one of \d+/,
    ],
    [
      'indent(2 * 10**8)',
      '{{ "a\\nb"|indent(200000000, true) }}',
      /got indent\(\) building 400000003/,
    ],
    [
      'a filter block indent(2 * 10**8)',
      '{% filter indent(200000000, true) %}a\nb{% endfilter %}',
      /got indent\(\) building 400000003/,
    ],
    [
      'join with a 512 KiB separator',
      "{% set ns = namespace(b='y') %}{% for i in range(19) %}{% set ns.b = ns.b ~ ns.b %}{% endfor %}{{ range(400)|join(ns.b) }}",
      /got join\(\) building \d{9}/,
    ],
    [
      "replace('', 512 KiB) as a filter",
      "{% set ns = namespace(b='y') %}{% for i in range(19) %}{% set ns.b = ns.b ~ ns.b %}{% endfor %}{{ ('x' ~ ns.b)|replace('', ns.b) }}",
      /got replace\(\) building \d{12}/,
    ],
    [
      "replace('', 512 KiB) as a method",
      "{% set ns = namespace(b='y') %}{% for i in range(19) %}{% set ns.b = ns.b ~ ns.b %}{% endfor %}{{ ('x' ~ ns.b).replace('', ns.b) }}",
      /got replace\(\) building \d{12}/,
    ],
    [
      'tojson(indent=3 * 10**8)',
      '{{ [1, 2, 3]|tojson(indent=300000000) }}',
      /expected tojson\(indent=…\) of at most 64, got 300000000/,
    ],
    [
      'a namespace holding a list holding itself, then tojson',
      '{% set ns = namespace(a=1) %}{% set ns.a = [ns] %}{{ ns|tojson }}',
      /got one nested too deep to measure/,
    ],
  ];
  it.each(cases)('%s', (_name, template, message) => {
    const { error, ms } = failure(template);
    expect(error).toBeInstanceOf(DatasetsError);
    expect(error.code).toBe('TEMPLATE_FAILED');
    expect(error.message).toMatch(message);
    expect(ms).toBeLessThan(1000);
  });

  it('output past the bound: a loop printing a message 20,000 times', () => {
    const template = '{% for i in range(20000) %}{{ messages[0].content }}{% endfor %}';
    const { error, ms } = failure(template, { maxTemplateSteps: 100_000_000 }, [
      { role: 'user', content: 'x'.repeat(100) },
    ]);
    expect(error.message).toMatch(/got one of 2000000[\s\S]*raise maxTemplateOutput/);
    expect(ms).toBeLessThan(1000);
  });

  it('names the source and the option in the hint; small custom bounds apply', () => {
    const source = 'models/tinyllama/tokenizer_config.json';
    expect(
      failure(tinyllama.chat_template, { maxTemplateSteps: 10, source }).error.message,
    ).toMatch(
      /expected at most 10 steps, got more[\s\S]*Hint: the template comes from models\/tinyllama\/tokenizer_config\.json; raise maxTemplateSteps/,
    );
    expect(failure(tinyllama.chat_template, { maxTemplateOutput: 40 }).error.message).toMatch(
      /expected output and values of at most 40 characters, got one of \d+[\s\S]*raise maxTemplateOutput/,
    );
  });

  it('JavaScript objects stay out of reach (no constructor, no process)', () => {
    expect(failure("{{ ''.constructor.constructor('return process')() }}").error.message).toMatch(
      /Cannot call something that is not a function/,
    );
    expect(render('[{{ messages.constructor }}]')).toBe('[]');
  });

  it('refuses bounds that are not positive integers', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      const { error } = failure(CHATML, { maxTemplateSteps: bad });
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toMatch(/expected maxTemplateSteps to be a positive integer/);
    }
    expect(render(CHATML, { maxTemplateSteps: Number.POSITIVE_INFINITY })).toContain(
      '<|im_start|>',
    );
  });
});
