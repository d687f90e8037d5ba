/**
 * Writes what @qlora/lora produces for `tools/reference/peft_ref.py verify` to read with PEFT
 * and bitsandbytes:
 * - test-fixtures/lora/ts-adapter/: saveAdapter output for the tiny model (random A and B,
 *   `initLoraWeights: false`, seed 5, r 4, alpha 8, rsLoRA, all seven projections);
 * - test-fixtures/lora/ts-nf4/model.safetensors: quantizedStateDict after quantizeProjections
 *   (nf4, blocksize 64, double quant).
 * packages/trainer/src/lora-parity.test.ts checks that running this code again gives the same
 * bytes, so the PEFT/bitsandbytes results recorded for these files apply to the current code.
 *
 *   node --conditions=@qlora/source --import tsx tools/reference/lora_write_ts.ts
 */
import { resolve } from 'node:path';
import { writeTsArtifacts } from '../../packages/trainer/src/_lora-artifacts';

await writeTsArtifacts(resolve('test-fixtures/lora'));
console.log('wrote test-fixtures/lora/ts-adapter and test-fixtures/lora/ts-nf4');
