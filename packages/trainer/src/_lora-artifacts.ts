// Builds the adapter and 4-bit checkpoint that tools/reference/peft_ref.py verify reads back with
// PEFT and bitsandbytes; shared by tools/reference/lora_write_ts.ts and lora-parity.test.ts.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { injectLora, quantizedStateDict, quantizeProjections } from '@qlora/lora';
import { saveAdapter } from '@qlora/lora/node';
import { writeSafetensors } from '@qlora/safetensors/node';
import { fixturePath } from '@qlora/test-utils';
import { initBackend } from './backend';
import { loadModel } from './load-model';

export const TS_ADAPTER_OPTIONS = {
  r: 4,
  alpha: 8,
  useRslora: true,
  seed: 5,
  initLoraWeights: false,
} as const;

export async function writeTsArtifacts(outDir: string): Promise<void> {
  await initBackend('cpu');
  const tiny = fixturePath('lora', 'tiny');
  const { model } = await loadModel(tiny, { skipTokenizer: true });
  injectLora(model, TS_ADAPTER_OPTIONS);
  await saveAdapter(model, join(outDir, 'ts-adapter'), { baseModelNameOrPath: 'tiny' });
  model.dispose();

  const { model: base } = await loadModel(tiny, { skipTokenizer: true });
  quantizeProjections(base, { quantType: 'nf4', blocksize: 64, doubleQuant: true });
  mkdirSync(join(outDir, 'ts-nf4'), { recursive: true });
  await writeSafetensors(join(outDir, 'ts-nf4', 'model.safetensors'), quantizedStateDict(base), {
    format: 'pt',
  });
  base.dispose();
}
