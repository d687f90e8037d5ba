// The `qlora` bin: the only place that touches the real process (argv, signals, exit status).
// tsup adds the `#!/usr/bin/env node` line (tsup.config.ts).
import { EXIT_CODES } from './errors';
import { createNodeIo } from './io';
import { runCli } from './program';

const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(EXIT_CODES.interrupted);
  process.stderr.write('\nqlora: interrupted (Ctrl-C again to stop at once)\n');
  controller.abort();
  // Commands check the signal between steps; stop anyway if one does not.
  setTimeout(() => process.exit(EXIT_CODES.interrupted), 5000).unref();
});

const status = await runCli(process.argv.slice(2), createNodeIo(controller.signal));
process.exitCode = controller.signal.aborted ? EXIT_CODES.interrupted : status;
