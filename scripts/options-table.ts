// Prints the README's table of `sluice run` options (between <!-- options:start --> and <!-- options:end -->).
import { optionsTable } from '../src/process/options';

process.stdout.write(optionsTable());
