import { Command, CommanderError } from 'commander';
import { SluiceError, describeError } from '../errors';
import { registerCheckCommand } from './check';
import { registerDemoCommand } from './demo';
import { registerGenerateCommand } from './generate';
import { registerRegistryCommands } from './registry';
import { registerSchemasCommands } from './schemas';
import { registerStackCommands } from './stack';
import { registerTopicsCommands } from './topics';
import { registerServeCommands } from './serve';
import { registerSinkCommands } from './sink';
import { registerDlqCommands } from './dlq';
import { registerRunCommand } from './run-stream';
import { registerReplayCommand } from './replay';
import { registerLagCommand } from './lag';
import { registerGroupsCommands } from './groups';
import { registerDeleteCommands } from './delete';
import { printError } from './output';

/** Exit codes, as documented in the README: 0 ok, 1 failure, 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Kafka-native stream processing: Avro events -> dedup -> event-time windows -> ClickHouse')
    .version(require('../../package.json').version as string)
    .showHelpAfterError()
    .exitOverride();
  registerStackCommands(program);
  registerCheckCommand(program);
  registerDemoCommand(program);
  registerGenerateCommand(program);
  registerRegistryCommands(program);
  registerSchemasCommands(program);
  registerTopicsCommands(program);
  registerServeCommands(program);
  registerSinkCommands(program);
  registerDlqCommands(program);
  registerRunCommand(program);
  registerReplayCommand(program);
  registerLagCommand(program);
  registerGroupsCommands(program);
  registerDeleteCommands(program);
  program.addHelpText('after', '\nExit codes: 0 ok, 1 failure, 2 usage error.');
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof SluiceError) {
      printError(err.message);
      return EXIT.failure;
    }
    printError(describeError(err));
    if (process.env.SLUICE_DEBUG) console.error(err);
    return EXIT.failure;
  }
}
