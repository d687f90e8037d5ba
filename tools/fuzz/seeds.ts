// Small seed files in the real formats for the fuzzers (package fuzz tests and run.ts), kept
// inline so the fuzzers need no shared data. Shapes follow the real files: GSM8K jsonl, Alpaca
// json, hendrycks MMLU csv (headerless, RFC 4180 quoting), HellaSwag raw and preprocessed jsonl.

/** Small files in the real formats (GSM8K jsonl, Alpaca json, hendrycks MMLU csv, HellaSwag jsonl). */
export const DATASET_SEEDS = {
  gsm8kJsonl: [
    {
      question:
        'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?',
      answer: 'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72',
    },
    { question: 'Weng earns $12 an hour for babysitting.', answer: '#### 10' },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n'),
  alpacaJson: JSON.stringify(
    [
      {
        instruction: 'Give three tips for staying healthy.',
        input: '',
        output: '1. Eat a balanced diet.',
      },
      { instruction: 'Translate to French.', input: 'Hello, "world"', output: 'Bonjour' },
    ],
    null,
    2,
  ),
  mmluCsv:
    '"A 6-sided die is rolled 15 times, and ""side 3"" comes up 2 times. Probability?",2.0/15,1.0/7,3.0/16,1.0/5,B\n' +
    'Which image data augmentation is most common for natural images?,random crop and horizontal flip,random crop and vertical flip,posterization,dithering,A\n',
  /** lm-eval's preprocessed HellaSwag jsonl (`ctx`, `endings`, numeric label). */
  hellaswagPreprocessedJsonl: [
    {
      idx: 0,
      activity_label: 'Roof shingle removal',
      ctx: 'A man is sitting on a roof. he',
      endings: [
        'is using wrap.',
        'is ripping level tiles off.',
        'is holding a cube.',
        'starts pulling up roofing.',
      ],
      label: 3,
    },
    {
      idx: 1,
      activity_label: 'Clean and jerk',
      ctx: 'A lady walks to a barbell. She bends down [title] and grabs the pole. the lady',
      endings: [
        'swings.',
        'pulls the barbell forward.',
        'pulls a rope.',
        'stands and lifts the weight over her head.',
      ],
      label: 3,
    },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n'),
  /** Rowan/hellaswag raw jsonl (`ctx_a`, `ctx_b`, string label). */
  hellaswagRawJsonl: [
    {
      ind: 4,
      activity_label: 'Removing ice from car',
      ctx_a: 'Then, the man writes over the snow covering the window of a car.',
      ctx_b: 'then',
      ctx: 'Then, the man writes over the snow covering the window of a car. then',
      endings: [
        ', the man adds wax [title] to the windshield.',
        ', a person board a ski lift.',
        ', the man puts on a coat.',
        ', the man continues removing the snow on his car.',
      ],
      source_id: 'activitynet~v_-1IBHYS3L-Y',
      split: 'val',
      split_type: 'indomain',
      label: '3',
    },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n'),
} as const;

/** A JSONL request cache as `@qlora/bench-core/node` writes it. */
export const CACHE_SEED = [
  { key: 'a'.repeat(64), value: { logprob: -1.25, isGreedy: false } },
  { key: 'b'.repeat(64), value: ' 42\n\nQuestion:' },
  { key: 'c'.repeat(64), value: { logprob: -0.5, isGreedy: true } },
]
  .map((e) => `${JSON.stringify(e)}\n`)
  .join('');
