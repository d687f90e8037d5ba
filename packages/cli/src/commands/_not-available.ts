import { CliError } from '../errors';

/** The error of a command declared ahead of the trainer (exit 4). */
export function notAvailable(command: string, needs: string): CliError {
  return new CliError(
    'NOT_AVAILABLE',
    `qlora ${command}: expected an available command, got one not wired in @qlora/cli yet (it needs ${needs})`,
    {
      hint: 'Use "qlora compare", "qlora inspect" or "qlora quantize" now; this command arrives with @qlora/trainer.',
    },
  );
}
