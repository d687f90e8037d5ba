/**
 * `pnpm bench [--filter <pkg>] [--write]`: runs every `packages/<pkg>/bench/*.bench.ts`, prints a
 * markdown table per package, and with `--write` replaces that package's section in BENCHMARKS.md.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchRow, BenchSuite } from './harness';

const root = resolve(import.meta.dirname, '../..');
const args = process.argv.slice(2);
const filterIndex = args.indexOf('--filter');
const filter = filterIndex >= 0 ? args[filterIndex + 1] : undefined;
const write = args.includes('--write');

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(3);
}

function table(rows: BenchRow[]): string {
  const lines = [
    '| benchmark | throughput | reference (same run) | ratio | target | note |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const ref = r.reference ? `${r.reference.name}: ${fmt(r.reference.value)} ${r.unit}` : '–';
    const ratio = r.ratio !== undefined ? fmt(r.ratio) : '–';
    const target =
      r.target !== undefined
        ? `≥ ${r.target} ${r.ratio !== undefined && r.ratio >= r.target ? '✓' : '✗'}`
        : '–';
    lines.push(
      `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${ref} | ${ratio} | ${target} | ${r.note ?? ''} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const packagesDir = join(root, 'packages');
  const packages = (await readdir(packagesDir)).sort();
  const machine = `${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  let markdown = await readFile(join(root, 'BENCHMARKS.md'), 'utf8');
  for (const pkg of packages) {
    if (filter && pkg !== filter) continue;
    const benchDir = join(packagesDir, pkg, 'bench');
    let files: string[];
    try {
      files = (await readdir(benchDir)).filter((f) => f.endsWith('.bench.ts')).sort();
    } catch {
      continue;
    }
    const sections: string[] = [];
    for (const file of files) {
      const mod = (await import(pathToFileURL(join(benchDir, file)).href)) as {
        default: BenchSuite;
      };
      const suite = mod.default;
      process.stderr.write(`[bench] ${pkg}/${file}: ${suite.title}\n`);
      const rows = await suite.run();
      sections.push(`### ${suite.title}\n\n${table(rows)}`);
    }
    if (sections.length === 0) continue;
    const date = new Date().toISOString().slice(0, 10);
    const body = `## @qlora/${pkg}\n\nCommand: \`pnpm bench --filter ${pkg}\` · ${date} · ${machine}\n\n${sections.join('\n\n')}\n`;
    process.stdout.write(`${body}\n`);
    const start = `<!-- bench:${pkg}:start -->`;
    const end = `<!-- bench:${pkg}:end -->`;
    const block = `${start}\n${body}${end}`;
    const at = markdown.indexOf(start);
    const until = markdown.indexOf(end);
    markdown =
      at >= 0 && until > at
        ? markdown.slice(0, at) + block + markdown.slice(until + end.length)
        : `${markdown.trimEnd()}\n\n${block}\n`;
  }
  if (write) await writeFile(join(root, 'BENCHMARKS.md'), markdown);
}

await main();
