import integrationSetup from '../helpers/global-setup';
import { resetResults } from './results';

/** The shared stack (scenarios that stop nothing use it), and an empty results file for this run's table. */
export default async function globalSetup(): Promise<void> {
  await integrationSetup();
  resetResults();
}
