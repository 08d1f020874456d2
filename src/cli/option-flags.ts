import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseOption, type OptionDefinitions, type OptionValues } from '../process/options';

/**
 * A flag per declared option (src/process/options.ts): its argument is parsed and checked against the
 * declared bounds as the command line is read, so a bad value stops the command before it connects to
 * anything, with one line naming the flag.
 */
export function addOptionFlags(command: Command, definitions: OptionDefinitions): Command {
  for (const definition of Object.values(definitions)) {
    const option = new Option(`--${definition.flag} <${definition.unit}>`, definition.description)
      .default(definition.default)
      .argParser((text: string) => {
        const parsed = parseOption(definition, text);
        if ('problem' in parsed) throw new InvalidArgumentError(parsed.problem);
        return parsed.value;
      });
    command.addOption(option);
  }
  return command;
}

export interface OptionFlags<T extends OptionDefinitions> {
  values: OptionValues<T>;
  /** The options given on the command line, not left at their defaults. */
  given: Set<keyof T>;
}

/** The parsed values of flags added with addOptionFlags, by option name. */
export function readOptionFlags<T extends OptionDefinitions>(command: Command, definitions: T): OptionFlags<T> {
  const opts = command.opts<Record<string, unknown>>();
  const values: Record<string, unknown> = {};
  const given = new Set<keyof T>();
  for (const [name, definition] of Object.entries(definitions)) {
    const attribute = command.options.find((o) => o.long === `--${definition.flag}`)!.attributeName();
    values[name] = opts[attribute];
    if (command.getOptionValueSource(attribute) !== 'default') given.add(name);
  }
  return { values: values as OptionValues<T>, given };
}
