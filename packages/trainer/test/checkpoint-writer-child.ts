// Child process of checkpoint.test.ts's kill test: writes checkpoints in a loop until killed.
// Prints "wrote <step>" after each complete checkpoint.
import { writeCheckpoint } from '../src/run/checkpoint';

const runDir = process.argv[2] as string;
const data = new Float32Array(1 << 18); // 1 MiB of adapter per checkpoint
for (let step = 1; step < 10_000; step++) {
  data.fill(step);
  await writeCheckpoint(
    runDir,
    {
      step,
      adapter: { w: { dtype: 'F32', shape: [data.length], data } },
      optimizer: {
        kind: 'adamw',
        steps: { w: step },
        tensors: { 'w.exp_avg': { dtype: 'F32', shape: [data.length], data } },
      },
      rng: { data: [step, 2, 3, 4] },
      dataPosition: { index: step },
      config: {},
    },
    { keepLast: 2 },
  );
  process.stdout.write(`wrote ${step}\n`);
}
