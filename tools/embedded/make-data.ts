/**
 * Makes the embedded experiment's synthetic data: every sentence comes from the templates and
 * invented word lists below (no dataset text is copied), in the real benchmarks' file formats.
 *
 *   node --import tsx tools/embedded/make-data.ts [--out DIR] [--corpus DIR]
 *
 * Writes to `--out` (default `packages/cli/assets/embedded/data`):
 * - `gsm8k/train.jsonl`, `gsm8k/test.jsonl`: `{question, answer}` with reasoning and `#### N`
 * - `hellaswag/train.jsonl`, `hellaswag/validation.jsonl`: the `Rowan/hellaswag` raw schema
 * - `mmlu/dev/<subject>_dev.csv`, `mmlu/test/<subject>_test.csv`: hendrycks headerless CSV
 * - `alpaca/instructions.json`: Alpaca records without arithmetic (no digits at all)
 * and to `--corpus` (default `.carry/embedded`, git-ignored) the pretraining corpus
 * `corpus.jsonl` (`{text}` per document). Same seed, same bytes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const SEED = 20260128;

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32) and helpers. Each stream gets its own seed so that adding records to
// one file does not shift the others.

type Rng = () => number;

function createRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const a = out[i] as T;
    out[i] = out[j] as T;
    out[j] = a;
  }
  return out;
}

/** `count` distinct items of `items` other than `exclude`, in random order. */
function pickOthers<T>(rng: Rng, items: readonly T[], exclude: T, count: number): T[] {
  return shuffled(
    rng,
    items.filter((x) => x !== exclude),
  ).slice(0, count);
}

function cap(s: string): string {
  return s ? (s[0] as string).toUpperCase() + s.slice(1) : s;
}

// ---------------------------------------------------------------------------------------------
// GSM8K format: small-number word problems, answer = reasoning lines + `#### N`. No `<<a+b=c>>`
// calculator annotations (they only lengthen sequences; lm-eval ignores them).

interface Gsm8kRecord {
  question: string;
  answer: string;
}

const PEOPLE: readonly (readonly [string, 'he' | 'she'])[] = [
  ['Anna', 'she'],
  ['Ben', 'he'],
  ['Carla', 'she'],
  ['David', 'he'],
  ['Emma', 'she'],
  ['Felix', 'he'],
  ['Grace', 'she'],
  ['Hugo', 'he'],
  ['Iris', 'she'],
  ['Jack', 'he'],
  ['Kira', 'she'],
  ['Leo', 'he'],
  ['Maya', 'she'],
  ['Nora', 'she'],
  ['Omar', 'he'],
  ['Paula', 'she'],
  ['Rosa', 'she'],
  ['Sam', 'he'],
  ['Tara', 'she'],
  ['Victor', 'he'],
];

const ITEMS = [
  'apples',
  'pencils',
  'stickers',
  'marbles',
  'books',
  'cookies',
  'shells',
  'stamps',
  'cards',
  'balloons',
  'flowers',
  'eggs',
  'toy cars',
  'candles',
  'buttons',
] as const;

const CONTAINERS = ['bags', 'boxes', 'jars', 'baskets', 'packs'] as const;

function makeGsm8k(rng: Rng): Gsm8kRecord {
  const [name, pronoun] = pick(rng, PEOPLE);
  let other = pick(rng, PEOPLE);
  while (other[0] === name) other = pick(rng, PEOPLE);
  const name2 = other[0];
  const item = pick(rng, ITEMS);
  const kind = randInt(rng, 0, 4);
  if (kind === 0) {
    const a = randInt(rng, 10, 60);
    const b = randInt(rng, 10, 60);
    const c = a + b;
    return {
      question: `${name} has ${a} ${item}. ${cap(pronoun)} buys ${b} more. How many ${item} does ${name} have now?`,
      answer: `${name} has ${a} + ${b} = ${c} ${item} now.\n#### ${c}`,
    };
  }
  if (kind === 1) {
    const a = randInt(rng, 10, 60);
    const b = randInt(rng, 10, 60);
    const c = a + b;
    return {
      question: `${name} has ${a} ${item}. ${name2} has ${b} more ${item} than ${name}. How many ${item} does ${name2} have?`,
      answer: `${name2} has ${a} + ${b} = ${c} ${item}.\n#### ${c}`,
    };
  }
  if (kind === 2) {
    const a = randInt(rng, 20, 99);
    const b = randInt(rng, 5, a - 1);
    const c = a - b;
    return {
      question: `${name} had ${a} ${item} and gave ${b} of them to ${name2}. How many ${item} does ${name} have left?`,
      answer: `${name} has ${a} - ${b} = ${c} ${item} left.\n#### ${c}`,
    };
  }
  if (kind === 3) {
    const a = randInt(rng, 2, 12);
    const b = randInt(rng, 3, 9);
    const c = a * b;
    const box = pick(rng, CONTAINERS);
    return {
      question: `${name} buys ${a} ${box} of ${item}. Each of the ${box} holds ${b} ${item}. How many ${item} does ${name} buy?`,
      answer: `${name} buys ${a} * ${b} = ${c} ${item}.\n#### ${c}`,
    };
  }
  const a = randInt(rng, 5, 40);
  const b = randInt(rng, 5, 40);
  const s = a + b;
  const c = randInt(rng, 1, s - 1);
  const r = s - c;
  return {
    question: `${name} has ${a} ${item}. ${cap(pronoun)} buys ${b} more and then gives ${c} to ${name2}. How many ${item} does ${name} have now?`,
    answer: `After buying, ${name} has ${a} + ${b} = ${s} ${item}.\nAfter giving, ${name} has ${s} - ${c} = ${r} ${item}.\n#### ${r}`,
  };
}

// ---------------------------------------------------------------------------------------------
// HellaSwag format: invented everyday activities, each a fixed five-step script. The right
// ending is the next step of the same script; distractors are steps of other scripts or the
// same script out of order.

const ACTIVITIES: readonly (readonly [string, readonly string[]])[] = [
  [
    'Making tea',
    [
      'fills a kettle with water',
      'puts the kettle on the stove',
      'places a tea bag in a cup',
      'pours the hot water into the cup',
      'stirs the tea and takes a sip',
    ],
  ],
  [
    'Washing a car',
    [
      'fills a bucket with soapy water',
      'wets the car with a hose',
      'scrubs the doors with a sponge',
      'rinses the soap off the car',
      'dries the car with a soft towel',
    ],
  ],
  [
    'Planting a tree',
    [
      'digs a deep hole in the yard',
      'sets the young tree in the hole',
      'fills the hole with loose soil',
      'presses the soil down with both hands',
      'waters the tree with a watering can',
    ],
  ],
  [
    'Baking bread',
    [
      'mixes flour, water and yeast in a bowl',
      'kneads the dough on the table',
      'leaves the dough to rise under a cloth',
      'puts the loaf into the hot oven',
      'takes the golden bread out to cool',
    ],
  ],
  [
    'Painting a fence',
    [
      'sands the old boards of the fence',
      'opens a can of white paint',
      'dips a wide brush into the paint',
      'paints the boards with long strokes',
      'steps back to look at the clean fence',
    ],
  ],
  [
    'Brushing teeth',
    [
      'squeezes toothpaste onto a toothbrush',
      'brushes the front teeth in small circles',
      'brushes the back teeth carefully',
      'spits the foam into the sink',
      'rinses the mouth with cold water',
    ],
  ],
  [
    'Making a sandwich',
    [
      'takes two slices of bread from the bag',
      'spreads butter on each slice',
      'lays cheese and lettuce on one slice',
      'covers it with the other slice',
      'cuts the sandwich in half and eats it',
    ],
  ],
  [
    'Washing dishes',
    [
      'fills the sink with warm soapy water',
      'scrubs the plates with a brush',
      'rinses each plate under the tap',
      'stacks the plates on the rack',
      'wipes the counter with a cloth',
    ],
  ],
  [
    'Changing a tire',
    [
      'loosens the nuts on the flat wheel',
      'raises the car with a jack',
      'pulls the flat tire off the car',
      'bolts the spare tire onto the wheel',
      'lowers the car back to the ground',
    ],
  ],
  [
    'Fishing at a lake',
    [
      'walks to the end of the wooden pier',
      'puts a worm on the hook',
      'casts the line far into the lake',
      'waits quietly for a bite',
      'reels in a shiny fish',
    ],
  ],
  [
    'Packing a suitcase',
    [
      'lays the open suitcase on the bed',
      'folds the shirts into neat piles',
      'places the shoes along the bottom',
      'tucks the socks into the corners',
      'zips the suitcase shut',
    ],
  ],
  [
    'Washing the dog',
    [
      'leads the dog into the bathtub',
      'soaks the fur with warm water',
      'rubs dog shampoo into the fur',
      'rinses the shampoo out of the fur',
      'wraps the dog in a big towel',
    ],
  ],
  [
    'Building a snowman',
    [
      'rolls a large ball of snow',
      'rolls a smaller ball for the body',
      'lifts a tiny ball on top for the head',
      'adds a carrot for the nose',
      'wraps a scarf around the snowman',
    ],
  ],
  [
    'Making a bed',
    [
      'pulls the old sheets off the bed',
      'spreads a clean sheet over the mattress',
      'tucks the corners of the sheet under',
      'shakes the pillows into their cases',
      'smooths the blanket over the bed',
    ],
  ],
  [
    'Doing laundry',
    [
      'sorts the clothes into dark and light piles',
      'loads the washing machine',
      'pours detergent into the drawer',
      'hangs the wet clothes on a line',
      'folds the dry clothes into a basket',
    ],
  ],
  [
    'Making pancakes',
    [
      'whisks eggs and milk in a bowl',
      'stirs flour into the batter',
      'heats a pan with a little oil',
      'pours a round of batter into the pan',
      'flips the pancake onto a plate',
    ],
  ],
  [
    'Cleaning windows',
    [
      'sprays glass cleaner on the window',
      'wipes the glass with a cloth',
      'scrapes a spot off with a blade',
      'polishes the glass until it shines',
      'closes the curtains again',
    ],
  ],
  [
    'Writing a letter',
    [
      'takes out a sheet of paper and a pen',
      'writes a friendly greeting at the top',
      'writes a few lines about the week',
      'signs the letter at the bottom',
      'folds the letter into an envelope',
    ],
  ],
  [
    'Setting a table',
    [
      'spreads a cloth over the table',
      'places a plate in front of each chair',
      'sets a fork and a knife beside each plate',
      'fills the glasses with water',
      'lights a candle in the middle',
    ],
  ],
  [
    'Riding a bike',
    [
      'puts on a helmet and buckles it',
      'wheels the bike out of the garage',
      'climbs onto the seat',
      'pedals down the quiet street',
      'rings the bell at the corner',
    ],
  ],
];

const ACTORS: readonly (readonly [string, string])[] = [
  ['A man', 'he'],
  ['A woman', 'she'],
  ['A boy', 'he'],
  ['A girl', 'she'],
  ['An old man', 'he'],
  ['A young woman', 'she'],
  ['A teenager', 'he'],
  ['A grandmother', 'she'],
];

interface HellaswagRecord {
  ind: number;
  activity_label: string;
  ctx_a: string;
  ctx_b: string;
  ctx: string;
  endings: string[];
  source_id: string;
  split: string;
  split_type: string;
  label: string;
}

/** One scene: activity, actor, the index of the last shown step, and one or two context steps. */
interface Scene {
  activity: number;
  actor: number;
  step: number;
  twoSteps: boolean;
}

/** The scene's `source_id`: one per (activity, actor, step). */
function sceneKey(s: Scene): string {
  return `synthetic~${s.activity}-${s.actor}-${s.step}`;
}

function makeHellaswag(rng: Rng, scene: Scene, ind: number, split: string): HellaswagRecord {
  const [label, steps] = ACTIVITIES[scene.activity] as readonly [string, readonly string[]];
  const [actor, pronoun] = ACTORS[scene.actor] as readonly [string, string];
  const step = (i: number): string => steps[i] as string;
  const ctxA =
    scene.twoSteps && scene.step > 0
      ? `${actor} ${step(scene.step - 1)}. ${cap(pronoun)} ${step(scene.step)}.`
      : `${actor} ${step(scene.step)}.`;
  const ctxB = rng() < 0.5 ? pronoun : `then ${pronoun}`;
  const right = `${step(scene.step + 1)}.`;
  // Two distractors from the same script out of order, one from another script.
  const sameScript = [0, 1, 2, 3, 4].filter((i) => i !== scene.step + 1);
  const otherActivities = pickOthers(
    rng,
    ACTIVITIES.map((_, i) => i),
    scene.activity,
    1,
  );
  const distractors = [
    ...shuffled(rng, sameScript)
      .slice(0, 2)
      .map((i) => `${step(i)}.`),
    ...otherActivities.map(
      (a) => `${(ACTIVITIES[a] as readonly [string, readonly string[]])[1][randInt(rng, 1, 4)]}.`,
    ),
  ];
  const gold = randInt(rng, 0, 3);
  const endings = shuffled(rng, distractors);
  endings.splice(gold, 0, right);
  return {
    ind,
    activity_label: label,
    ctx_a: ctxA,
    ctx_b: ctxB,
    ctx: `${ctxA} ${ctxB}`,
    endings,
    source_id: sceneKey(scene),
    split,
    split_type: 'indomain',
    label: String(gold),
  };
}

/** lm-eval's hellaswag preprocessing (spec §1.1), for the pretraining text. */
function hellaswagQuery(r: HellaswagRecord): string {
  const b = r.ctx_b ? (r.ctx_b[0] as string).toUpperCase() + r.ctx_b.slice(1).toLowerCase() : '';
  return `${r.activity_label}: ${r.ctx_a} ${b}`.trim();
}

// ---------------------------------------------------------------------------------------------
// MMLU format: two invented computer-science subjects over a fixed invented knowledge base.

interface Fact {
  subject: string;
  question: string;
  answer: string;
  pool: readonly string[];
  prose: readonly string[];
}

const PROTOCOLS = [
  'Zephyr',
  'Quokka',
  'Marlin',
  'Tundra',
  'Basalt',
  'Orchid',
  'Falcon',
  'Juniper',
  'Nimbus',
  'Pebble',
  'Cobalt',
  'Sparrow',
  'Lantern',
] as const;
const PURPOSES = [
  'file transfer',
  'email delivery',
  'clock synchronization',
  'remote login',
  'video streaming',
  'chat messages',
  'printer sharing',
  'name lookup',
  'sensor readings',
  'backup storage',
  'game state',
  'map tiles',
  'voice calls',
] as const;
const DESIGNERS = [
  'Ada Brell',
  'Mira Quon',
  'Tobin Vale',
  'Lena Forst',
  'Rufus Kade',
  'Ines Marr',
  'Otto Pell',
  'Saskia Drum',
  'Hal Wren',
  'Nell Oaks',
  'Piet Lund',
  'Cora Fenn',
  'Ivo Stark',
] as const;
const TRANSPORTS = ['TCP', 'UDP', 'QUIC', 'SCTP'] as const;

const LANGUAGES = [
  'Brimble',
  'Castor',
  'Dovetail',
  'Ember',
  'Fennel',
  'Glimmer',
  'Hollis',
  'Indigo',
  'Jasper',
  'Kestrel',
  'Lumen',
  'Mosaic',
  'Nettle',
] as const;
const EXTENSIONS = [
  '.qx',
  '.vbn',
  '.tlk',
  '.zrp',
  '.mwo',
  '.gfy',
  '.dke',
  '.upa',
  '.sro',
  '.hix',
  '.jeb',
  '.wcl',
  '.nox',
] as const;
const PARADIGMS = [
  'functional',
  'object-oriented',
  'logic',
  'array',
  'stack-based',
  'procedural',
  'reactive',
] as const;
const COMPANIES = [
  'Northwind Labs',
  'Bluefin Systems',
  'Copperleaf',
  'Driftwood Software',
  'Elmstone',
  'Foxglove Computing',
  'Greyhaven',
  'Harbor Logic',
  'Ironbark',
  'Juniper Works',
  'Kettle Labs',
  'Larkspur',
  'Moonrise Tech',
] as const;
const COMMENTS = ['#', '//', '--', ';', '%', '!', '~~', '::'] as const;

const NETWORK_SUBJECT = 'fictional_networking';
const LANGUAGE_SUBJECT = 'fictional_programming';

function makeKnowledgeBase(rng: Rng): Fact[] {
  const facts: Fact[] = [];
  const purposes = shuffled(rng, PURPOSES);
  const designers = shuffled(rng, DESIGNERS);
  const ports: string[] = [];
  while (ports.length < PROTOCOLS.length) {
    const p = String(randInt(rng, 1000, 9999));
    if (!ports.includes(p)) ports.push(p);
  }
  PROTOCOLS.forEach((p, i) => {
    const purpose = purposes[i] as string;
    const designer = designers[i] as string;
    const port = ports[i] as string;
    const transport = pick(rng, TRANSPORTS);
    facts.push(
      {
        subject: NETWORK_SUBJECT,
        question: `Which port does the ${p} protocol use by default?`,
        answer: port,
        pool: ports,
        prose: [
          `The ${p} protocol listens on port ${port} by default.`,
          `By default, ${p} uses port ${port}.`,
        ],
      },
      {
        subject: NETWORK_SUBJECT,
        question: `Which transport protocol does ${p} run on?`,
        answer: transport,
        pool: TRANSPORTS,
        prose: [
          `The ${p} protocol runs on ${transport}.`,
          `${p} messages are carried by ${transport}.`,
        ],
      },
      {
        subject: NETWORK_SUBJECT,
        question: `Who designed the ${p} protocol?`,
        answer: designer,
        pool: DESIGNERS,
        prose: [`The ${p} protocol was designed by ${designer}.`, `${designer} designed ${p}.`],
      },
      {
        subject: NETWORK_SUBJECT,
        question: `What is the ${p} protocol mainly used for?`,
        answer: purpose,
        pool: PURPOSES,
        prose: [
          `The ${p} protocol is mainly used for ${purpose}.`,
          `People use ${p} for ${purpose}.`,
        ],
      },
    );
  });
  const extensions = shuffled(rng, EXTENSIONS);
  const companies = shuffled(rng, COMPANIES);
  LANGUAGES.forEach((l, i) => {
    const ext = extensions[i] as string;
    const company = companies[i] as string;
    const paradigm = pick(rng, PARADIGMS);
    const comment = pick(rng, COMMENTS);
    facts.push(
      {
        subject: LANGUAGE_SUBJECT,
        question: `Which file extension do ${l} source files use?`,
        answer: ext,
        pool: EXTENSIONS,
        prose: [
          `${l} source files end in ${ext}.`,
          `A ${l} program is saved with the extension ${ext}.`,
        ],
      },
      {
        subject: LANGUAGE_SUBJECT,
        question: `Which company created the ${l} programming language?`,
        answer: company,
        pool: COMPANIES,
        prose: [`The ${l} language was created by ${company}.`, `${company} created ${l}.`],
      },
      {
        subject: LANGUAGE_SUBJECT,
        question: `Which paradigm does the ${l} language follow?`,
        answer: paradigm,
        pool: PARADIGMS,
        prose: [
          `${l} is a ${paradigm} language.`,
          `The ${l} language follows the ${paradigm} style.`,
        ],
      },
      {
        subject: LANGUAGE_SUBJECT,
        question: `Which symbol starts a comment in ${l}?`,
        answer: comment,
        pool: COMMENTS,
        prose: [
          `In ${l}, a comment starts with ${comment}.`,
          `${l} comments begin with the symbol ${comment}.`,
        ],
      },
    );
  });
  return facts;
}

interface MmluItem {
  question: string;
  choices: [string, string, string, string];
  answer: number;
}

function makeMmluItem(rng: Rng, fact: Fact): MmluItem {
  const answer = randInt(rng, 0, 3);
  const choices = pickOthers(rng, fact.pool, fact.answer, 3);
  choices.splice(answer, 0, fact.answer);
  return { question: fact.question, choices: choices as [string, string, string, string], answer };
}

const LETTERS = ['A', 'B', 'C', 'D'] as const;

function mmluText(item: MmluItem): string {
  const [a, b, c, d] = item.choices;
  return `${item.question.trim()}\nA. ${a}\nB. ${b}\nC. ${c}\nD. ${d}\nAnswer:`;
}

function mmluDescription(subject: string): string {
  return `The following are multiple choice questions (with answers) about ${subject.replaceAll('_', ' ')}.\n\n`;
}

/** RFC 4180 CSV line (pandas-readable): quote a field only when it needs it. */
function csvLine(fields: readonly string[]): string {
  return fields
    .map((f) => (/[",\n\r]/.test(f) || /^\s|\s$/.test(f) ? `"${f.replaceAll('"', '""')}"` : f))
    .join(',');
}

// ---------------------------------------------------------------------------------------------
// Alpaca instruction data without arithmetic (no digits anywhere).

interface AlpacaRecord {
  instruction: string;
  input: string;
  output: string;
}

const WORDS = [
  'apple',
  'river',
  'garden',
  'window',
  'candle',
  'forest',
  'bottle',
  'pillow',
  'rocket',
  'basket',
  'mirror',
  'ladder',
  'kitten',
  'pepper',
  'silver',
  'button',
  'castle',
  'dragon',
  'jacket',
  'lemon',
  'meadow',
  'needle',
  'orange',
  'pencil',
  'quilt',
  'saddle',
  'tiger',
  'violin',
  'wagon',
  'yellow',
  'zebra',
  'anchor',
  'bridge',
  'cloud',
  'desert',
  'engine',
  'feather',
  'guitar',
  'harbor',
  'island',
  'jungle',
  'kettle',
  'lantern',
  'marble',
  'napkin',
  'ocean',
  'parrot',
  'rabbit',
  'shadow',
  'thunder',
] as const;

const OPPOSITES: readonly (readonly [string, string])[] = [
  ['hot', 'cold'],
  ['big', 'small'],
  ['fast', 'slow'],
  ['happy', 'sad'],
  ['light', 'dark'],
  ['open', 'closed'],
  ['early', 'late'],
  ['up', 'down'],
  ['full', 'empty'],
  ['soft', 'hard'],
  ['young', 'old'],
  ['wet', 'dry'],
  ['loud', 'quiet'],
  ['near', 'far'],
  ['rich', 'poor'],
  ['strong', 'weak'],
  ['clean', 'dirty'],
  ['tall', 'short'],
  ['thick', 'thin'],
  ['day', 'night'],
];

const COLOURS = [
  'red',
  'blue',
  'green',
  'purple',
  'orange',
  'brown',
  'pink',
  'grey',
  'white',
  'black',
];
const NON_COLOURS = [
  'chair',
  'river',
  'spoon',
  'table',
  'cloud',
  'horse',
  'bread',
  'lamp',
  'stone',
  'shoe',
];
const ANIMALS = [
  'cat',
  'dog',
  'horse',
  'rabbit',
  'tiger',
  'zebra',
  'parrot',
  'kitten',
  'goat',
  'fox',
];
const PHRASES = [
  'good morning',
  'see you soon',
  'thank you',
  'well done',
  'sleep tight',
  'have a nice day',
  'welcome home',
  'take care',
  'good luck',
  'happy travels',
];
const PLURALS: readonly (readonly [string, string])[] = [
  ['cat', 'cats'],
  ['box', 'boxes'],
  ['child', 'children'],
  ['mouse', 'mice'],
  ['leaf', 'leaves'],
  ['city', 'cities'],
  ['dish', 'dishes'],
  ['foot', 'feet'],
  ['tooth', 'teeth'],
  ['story', 'stories'],
  ['wolf', 'wolves'],
  ['bus', 'buses'],
];

function makeInstruction(rng: Rng): AlpacaRecord {
  const kind = randInt(rng, 0, 11);
  if (kind === 0) {
    const w = pick(rng, WORDS);
    return {
      instruction: pick(rng, [
        'Write the word in capital letters.',
        'Convert the word to uppercase.',
      ]),
      input: w,
      output: w.toUpperCase(),
    };
  }
  if (kind === 1) {
    const words = shuffled(rng, WORDS).slice(0, randInt(rng, 3, 5));
    return {
      instruction: 'Reverse the order of these words.',
      input: words.join(' '),
      output: [...words].reverse().join(' '),
    };
  }
  if (kind === 2) {
    const [a, b] = pick(rng, OPPOSITES);
    const [w, o] = rng() < 0.5 ? [a, b] : [b, a];
    return { instruction: 'Give the opposite of the word.', input: w, output: o };
  }
  if (kind === 3) {
    const colour = pick(rng, COLOURS);
    const list = shuffled(rng, [colour, ...shuffled(rng, NON_COLOURS).slice(0, 3)]);
    return {
      instruction: 'Which word in the list is a colour?',
      input: list.join(', '),
      output: `The colour word is ${colour}.`,
    };
  }
  if (kind === 4) {
    const p = pick(rng, PHRASES);
    return { instruction: 'Repeat the phrase twice.', input: p, output: `${p} ${p}` };
  }
  if (kind === 5) {
    const w = pick(rng, WORDS);
    return {
      instruction: 'What is the first letter of the word?',
      input: w,
      output: `The first letter of ${w} is ${w[0] as string}.`,
    };
  }
  if (kind === 6) {
    const [s, p] = pick(rng, PLURALS);
    return { instruction: 'Write the plural of the word.', input: s, output: p };
  }
  if (kind === 7) {
    const w = pick(rng, WORDS);
    const frame = pick(rng, [
      `I saw a ${w} near the old house.`,
      `She drew a picture of a ${w}.`,
      `The ${w} was right where we left it.`,
      `We talked about the ${w} all afternoon.`,
    ]);
    return { instruction: 'Write a short sentence that uses the word.', input: w, output: frame };
  }
  // Story-world tasks: the names and things of the word problems, but nothing to count.
  const [name, pronoun] = pick(rng, PEOPLE);
  const item = pick(rng, ITEMS);
  if (kind === 9) {
    return {
      instruction: 'Who is the sentence about?',
      input: `${name} has some ${item}. ${cap(pronoun)} buys a few more.`,
      output: name,
    };
  }
  if (kind === 10) {
    let other = pick(rng, PEOPLE);
    while (other[0] === name) other = pick(rng, PEOPLE);
    return {
      instruction: 'Which thing does the sentence mention?',
      input: `${name} gives some ${item} to ${other[0]}.`,
      output: `The sentence mentions ${item}.`,
    };
  }
  if (kind === 11) {
    const [present, past] = pick(rng, [
      ['buys', 'bought'],
      ['gives away', 'gave away'],
      ['has', 'had'],
      ['finds', 'found'],
    ] as const);
    return {
      instruction: 'Rewrite the sentence in the past tense.',
      input: `${name} ${present} a few ${item}.`,
      output: `${name} ${past} a few ${item}.`,
    };
  }
  const animal = pick(rng, ANIMALS);
  const colour = pick(rng, COLOURS);
  return {
    instruction: pick(rng, [
      `Describe a ${colour} ${animal} in one sentence.`,
      `Write one sentence about a ${colour} ${animal}.`,
    ]),
    input: '',
    output: `The ${colour} ${animal} rests quietly in the sun.`,
  };
}

/**
 * One record of the fine-tuning file (`alpaca/instructions.json`). Half are questions shaped
 * exactly like the word problems (same names, things and sentence frames, and the question as
 * the instruction with an empty input, as `gsm8kToAlpaca` makes them) but with vague amounts
 * ("some", "a few") and a short verbal answer without numbers, `####` or worked steps. Tuning
 * on them changes how the model answers such questions (the format) rather than damaging it,
 * and mixing real word problems in (`--mix`) shows the model which questions still need the
 * worked answer. The other half are the general word tasks of {@link makeInstruction}.
 */
function makeFinetuneInstruction(rng: Rng): AlpacaRecord {
  if (rng() < 0.5) return makeInstruction(rng);
  const [name, pronoun] = pick(rng, PEOPLE);
  let other = pick(rng, PEOPLE);
  while (other[0] === name) other = pick(rng, PEOPLE);
  const name2 = other[0];
  const item = pick(rng, ITEMS);
  const some = pick(rng, ['some', 'a few', 'several', 'many']);
  const more = pick(rng, ['some', 'a few', 'several']);
  const kind = randInt(rng, 0, 4);
  const ask = (instruction: string, output: string): AlpacaRecord => ({
    instruction,
    input: '',
    output,
  });
  if (kind === 0) {
    return ask(
      `${name} has ${some} ${item}. ${cap(pronoun)} buys ${more} more. How many ${item} does ${name} have now?`,
      `More than before.`,
    );
  }
  if (kind === 1) {
    return ask(
      `${name} has ${some} ${item}. ${name2} has ${more} more ${item} than ${name}. How many ${item} does ${name2} have?`,
      `More than ${name}.`,
    );
  }
  if (kind === 2) {
    return ask(
      `${name} had ${some} ${item} and gave ${more} of them to ${name2}. How many ${item} does ${name} have left?`,
      `Fewer than before.`,
    );
  }
  if (kind === 3) {
    const box = pick(rng, CONTAINERS);
    return ask(
      `${name} buys ${some} ${box} of ${item}. Each of the ${box} holds ${more} ${item}. How many ${item} does ${name} buy?`,
      `Quite a lot of ${item}.`,
    );
  }
  return ask(
    `${name} has ${some} ${item}. ${cap(pronoun)} buys ${more} more and then gives ${pick(rng, ['a few', 'some'])} to ${name2}. How many ${item} does ${name} have now?`,
    `It depends on how many ${pronoun} gave away.`,
  );
}

/** Stanford Alpaca template (spec lora-training §4.5), for the few instruction examples in the corpus. */
function alpacaText(r: AlpacaRecord): string {
  return r.input
    ? `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n${r.instruction}\n\n### Input:\n${r.input}\n\n### Response:${r.output}`
    : `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n${r.instruction}\n\n### Response:${r.output}`;
}

// ---------------------------------------------------------------------------------------------
// Assembly

function parseArgs(argv: readonly string[]): { out: string; corpus: string } {
  const get = (flag: string, fallback: string): string => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : fallback;
  };
  return {
    out: resolve(get('--out', 'packages/cli/assets/embedded/data')),
    corpus: resolve(get('--corpus', '.carry/embedded')),
  };
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

const jsonl = (rows: readonly unknown[]): string =>
  rows.map((r) => `${JSON.stringify(r)}\n`).join('');

function main(): void {
  const { out, corpus } = parseArgs(process.argv.slice(2));

  // GSM8K: test first, then train and pretraining problems that never repeat a test question.
  const gsmRng = createRng(SEED + 1);
  const gsmTest: Gsm8kRecord[] = [];
  const seen = new Set<string>();
  while (gsmTest.length < 100) {
    const r = makeGsm8k(gsmRng);
    if (seen.has(r.question)) continue;
    seen.add(r.question);
    gsmTest.push(r);
  }
  const testQuestions = new Set(seen);
  const freshGsm = (n: number): Gsm8kRecord[] => {
    const rows: Gsm8kRecord[] = [];
    while (rows.length < n) {
      const r = makeGsm8k(gsmRng);
      if (!testQuestions.has(r.question)) rows.push(r);
    }
    return rows;
  };
  const gsmTrain = freshGsm(1000);
  const gsmPretrain = [...gsmTrain, ...freshGsm(11000)];

  // HellaSwag: validation scenes are held out of the pretraining text.
  const hsRng = createRng(SEED + 2);
  // Held out by (activity, actor, step): no pretraining text shows that actor doing that step
  // of that script followed by the next step.
  const scenes: Scene[] = [];
  ACTIVITIES.forEach((_, activity) => {
    ACTORS.forEach((_, actor) => {
      for (let step = 0; step < 4; step++) {
        scenes.push({ activity, actor, step, twoSteps: step > 0 && hsRng() < 0.5 });
      }
    });
  });
  const sceneOrder = shuffled(hsRng, scenes);
  const valScenes = sceneOrder.slice(0, 100);
  const valKeys = new Set(valScenes.map(sceneKey));
  const trainScenes = sceneOrder.slice(100);
  const hsValidation = valScenes.map((s, i) => makeHellaswag(hsRng, s, i, 'val'));
  const hsTrain = trainScenes.map((s, i) => makeHellaswag(hsRng, s, 100 + i, 'train'));
  if (hsTrain.some((r) => valKeys.has(r.source_id))) throw new Error('scene leak');

  // MMLU: test = every fact once (104), dev = 5 per subject with fresh choice orders.
  const kbRng = createRng(SEED + 3);
  const facts = makeKnowledgeBase(kbRng);
  const mmluRng = createRng(SEED + 4);
  const subjects = [NETWORK_SUBJECT, LANGUAGE_SUBJECT];
  const mmluTest = new Map<string, MmluItem[]>();
  const mmluDev = new Map<string, MmluItem[]>();
  const testPrompts = new Set<string>();
  for (const subject of subjects) {
    const subjectFacts = facts.filter((f) => f.subject === subject);
    const test = subjectFacts.map((f) => makeMmluItem(mmluRng, f));
    for (const t of test) testPrompts.add(mmluText(t));
    const dev: MmluItem[] = [];
    for (const f of shuffled(mmluRng, subjectFacts)) {
      if (dev.length === 5) break;
      const item = makeMmluItem(mmluRng, f);
      if (!testPrompts.has(mmluText(item))) dev.push(item);
    }
    mmluTest.set(subject, test);
    mmluDev.set(subject, dev);
  }

  // Instructions.
  const insRng = createRng(SEED + 5);
  const instructions: AlpacaRecord[] = [];
  for (let i = 0; i < 2000; i++) instructions.push(makeFinetuneInstruction(insRng));
  if (instructions.some((r) => /[0-9]/.test(r.instruction + r.input + r.output))) {
    throw new Error('instruction data must not contain digits');
  }

  // Files in the benchmarks' formats.
  write(join(out, 'gsm8k', 'train.jsonl'), jsonl(gsmTrain));
  write(join(out, 'gsm8k', 'test.jsonl'), jsonl(gsmTest));
  write(join(out, 'hellaswag', 'train.jsonl'), jsonl(hsTrain));
  write(join(out, 'hellaswag', 'validation.jsonl'), jsonl(hsValidation));
  for (const subject of subjects) {
    const rows = (items: readonly MmluItem[]): string =>
      items
        .map((it) => `${csvLine([it.question, ...it.choices, LETTERS[it.answer] as string])}\n`)
        .join('');
    write(join(out, 'mmlu', 'dev', `${subject}_dev.csv`), rows(mmluDev.get(subject) ?? []));
    write(join(out, 'mmlu', 'test', `${subject}_test.csv`), rows(mmluTest.get(subject) ?? []));
  }
  write(join(out, 'alpaca', 'instructions.json'), `${JSON.stringify(instructions, null, 1)}\n`);

  // Pretraining corpus: documents in the eval prompt formats, plus prose facts.
  const cRng = createRng(SEED + 6);
  const docs: string[] = [];
  const gsmBlock = (r: Gsm8kRecord): string => `Question: ${r.question}\nAnswer: ${r.answer}`;
  for (let i = 0; i < gsmPretrain.length; ) {
    const k = randInt(cRng, 1, 3);
    docs.push(
      gsmPretrain
        .slice(i, i + k)
        .map(gsmBlock)
        .join('\n\n'),
    );
    i += k;
  }
  for (let rep = 0; rep < 3; rep++) {
    for (const r of hsTrain) {
      const fresh = makeHellaswag(cRng, trainScenes[r.ind - 100] as Scene, r.ind, 'train');
      const gold = Number(fresh.label);
      docs.push(`${hellaswagQuery(fresh)} ${fresh.endings[gold] as string}`);
    }
  }
  // Full scripts as prose, with an actor that no benchmark item uses.
  ACTIVITIES.forEach(([label, steps]) => {
    for (let rep = 0; rep < 3; rep++) {
      const body = steps
        .map((s, i) => (i === 0 ? `Someone ${s}.` : `Then the person ${s}.`))
        .join(' ');
      docs.push(`${label}: ${body}`);
    }
  });
  for (let rep = 0; rep < 12; rep++) {
    for (const f of facts) docs.push(pick(cRng, f.prose));
  }
  for (let i = 0; i < 5000; i++) {
    const subject = pick(cRng, subjects);
    const subjectFacts = facts.filter((f) => f.subject === subject);
    const shots = randInt(cRng, 0, 2);
    let text = mmluDescription(subject);
    for (let s = 0; s <= shots; s++) {
      let item = makeMmluItem(cRng, pick(cRng, subjectFacts));
      while (testPrompts.has(mmluText(item))) item = makeMmluItem(cRng, pick(cRng, subjectFacts));
      text += `${mmluText(item)} ${LETTERS[item.answer] as string}${s < shots ? '\n\n' : ''}`;
    }
    docs.push(text);
  }
  for (let i = 0; i < 300; i++) docs.push(alpacaText(makeInstruction(cRng)));
  const corpusDocs = shuffled(cRng, docs);
  write(join(corpus, 'corpus.jsonl'), jsonl(corpusDocs.map((text) => ({ text }))));

  const chars = corpusDocs.reduce((n, d) => n + d.length, 0);
  process.stdout.write(
    `gsm8k train ${gsmTrain.length} test ${gsmTest.length} (pretraining ${gsmPretrain.length})\n` +
      `hellaswag train ${hsTrain.length} validation ${hsValidation.length}\n` +
      `mmlu ${subjects.map((s) => `${s}: dev ${mmluDev.get(s)?.length} test ${mmluTest.get(s)?.length}`).join(', ')}\n` +
      `alpaca ${instructions.length}\ncorpus ${corpusDocs.length} docs, ${chars} chars → ${corpus}\n`,
  );
}

main();
