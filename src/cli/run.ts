import { main } from './main';
import { quietKnownWarnings } from './warnings';

quietKnownWarnings();
main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
