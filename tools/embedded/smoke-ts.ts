/**
 * Loads the embedded model with the project's own runtime (`@qlora/trainer` on tfjs, CPU) and
 * evaluates the base model on the embedded data as lm-eval does (GSM8K 1-shot greedy with
 * strict/flexible extraction, HellaSwag acc/acc_norm, MMLU 0-shot acc), timing each part. The
 * accuracies should match `calibration.json` (PyTorch, f32 base) up to float noise.
 *
 *   node --import tsx tools/embedded/smoke-ts.ts [--backend cpu|wasm] [--limit N]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PythonRandom } from '../../packages/bench-core/src/index';
import { initBackend, loadModel } from '../../packages/trainer/src/index';

const argv = process.argv.slice(2);
const get = (flag: string, fallback: string): string => {
  const i = argv.indexOf(flag);
  return i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : fallback;
};
const backend = get('--backend', 'cpu') as 'cpu' | 'wasm';
const limit = Number(get('--limit', '100'));
const assets = 'packages/cli/assets/embedded';
const data = join(assets, 'data');
const lines = (f: string): string[] =>
  readFileSync(join(data, f), 'utf8')
    .split('\n')
    .filter((l) => l);

await initBackend(backend);
const { model } = await loadModel(join(assets, 'model'), {
  evaluation: { batchSize: 16, maxGenTokens: 64 },
});

// GSM8K, 1-shot, shots drawn like lm-eval (random.Random(1234).sample over train, per doc).
type Gsm = { question: string; answer: string };
const train = lines('gsm8k/train.jsonl').map((l) => JSON.parse(l) as Gsm);
const test = lines('gsm8k/test.jsonl')
  .map((l) => JSON.parse(l) as Gsm)
  .slice(0, limit);
const rnd = new PythonRandom(1234);
const prompts = test.map((d) => {
  const shots = rnd.sample(train, 1);
  return `${shots.map((s) => `Question: ${s.question}\nAnswer: ${s.answer}\n\n`).join('')}Question: ${d.question}\nAnswer:`;
});
const norm = (s: string): string =>
  s
    .replace(/,/g, '')
    .replace(/\$/g, '')
    .replace(/[\s\S]*#### /g, '')
    .replace(/\.$/, '')
    .toLowerCase();
let t = performance.now();
const outs = await model.generateUntil(
  prompts.map((context) => ({
    context,
    until: ['Question:', '</s>', '<|im_end|>'],
    maxGenTokens: 64,
  })),
);
const gsmSeconds = (performance.now() - t) / 1000;
let strict = 0;
let flex = 0;
outs.forEach((o, i) => {
  const ref = norm((test[i] as Gsm).answer);
  const s = /#### (-?[0-9.,]+)/.exec(o)?.[1]?.trim() ?? '[invalid]';
  const all = [...o.matchAll(/(-?[$0-9.,]{2,})|(-?[0-9]+)/g)];
  const last = all[all.length - 1];
  const f = last ? (last[1] || last[2] || '[invalid]').trim() : '[invalid]';
  strict += Number(norm(s) === ref);
  flex += Number(norm(f) === ref);
});
console.log(
  `gsm8k n=${test.length}: strict ${strict / test.length} flexible ${flex / test.length} (${gsmSeconds.toFixed(1)} s) e.g. ${JSON.stringify(outs[0])}`,
);

// HellaSwag, 0-shot.
type Hs = {
  activity_label: string;
  ctx_a: string;
  ctx_b: string;
  endings: string[];
  label: string;
};
const pre = (s: string): string =>
  s
    .trim()
    .replaceAll(' [title]', '. ')
    .replace(/\[.*?\]/g, '')
    .split('  ')
    .join(' ');
const hs = lines('hellaswag/validation.jsonl')
  .map((l) => JSON.parse(l) as Hs)
  .slice(0, limit);
t = performance.now();
const hsReq = hs.flatMap((d) => {
  const b = d.ctx_b ? d.ctx_b[0]?.toUpperCase() + d.ctx_b.slice(1).toLowerCase() : '';
  const q = pre(`${d.activity_label}: ${d.ctx_a} ${b}`);
  return d.endings.map((e) => ({ context: q, continuation: ` ${pre(e)}` }));
});
const hsLl = await model.loglikelihood(hsReq);
let acc = 0;
let accNorm = 0;
hs.forEach((d, i) => {
  const ll = hsLl.slice(4 * i, 4 * i + 4).map((r) => r.logprob);
  const argmax = (xs: number[]): number => xs.indexOf(Math.max(...xs));
  acc += Number(argmax(ll) === Number(d.label));
  accNorm += Number(
    argmax(ll.map((x, j) => x / [...pre(d.endings[j] as string)].length)) === Number(d.label),
  );
});
console.log(
  `hellaswag n=${hs.length}: acc ${acc / hs.length} acc_norm ${accNorm / hs.length} (${((performance.now() - t) / 1000).toFixed(1)} s)`,
);

// MMLU, 0-shot (the CSV has no quoted fields with commas in these subjects except quoted ones).
t = performance.now();
let mAcc = 0;
let mN = 0;
for (const subject of ['fictional_networking', 'fictional_programming']) {
  const rows = lines(`mmlu/test/${subject}_test.csv`)
    .slice(0, Math.ceil(limit / 2))
    .map((l) => l.split(','));
  const desc = `The following are multiple choice questions (with answers) about ${subject.replace('_', ' ')}.\n\n`;
  const req = rows.flatMap(([q, a, b, c, d]) =>
    ['A', 'B', 'C', 'D'].map((x) => ({
      context: `${desc}${(q as string).trim()}\nA. ${a}\nB. ${b}\nC. ${c}\nD. ${d}\nAnswer:`,
      continuation: ` ${x}`,
    })),
  );
  const ll = await model.loglikelihood(req);
  rows.forEach((r, i) => {
    const xs = ll.slice(4 * i, 4 * i + 4).map((x) => x.logprob);
    mAcc += Number(xs.indexOf(Math.max(...xs)) === 'ABCD'.indexOf(r[5] as string));
    mN += 1;
  });
}
console.log(`mmlu n=${mN}: acc ${mAcc / mN} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
