import type { Command } from 'commander';
import { loadConfig } from '../config';
import { AVRO_DIR, RegistryClient, checkCatalog, formatRegistration, loadCatalog, registerSchemas } from '../schema';
import { printLine } from './output';

interface DirOption {
  dir: string;
}

export function registerSchemasCommands(program: Command): void {
  const schemas = program
    .command('schemas')
    .description('the Avro schemas in avro/: check compatibility offline, register them, list the registry')
    .addHelpText(
      'after',
      '\nVersions of a schema are avro/<name>.avsc (v1) and avro/<name>.v<N>.avsc; avro/subjects.json maps each to its subject.',
    );

  schemas
    .command('check')
    .description(
      'check every schema version against the earlier ones under its compatibility level (no registry needed); exit 1 on a breaking change',
    )
    .option('--dir <dir>', 'folder with the .avsc files', AVRO_DIR)
    .addHelpText('after', '\nExamples:\n  sluice schemas check\n  sluice schemas check --dir ./avro')
    .action((opts: DirOption) => {
      let failed = false;
      for (const { family, problems } of checkCatalog(loadCatalog(opts.dir))) {
        const where = family.subject
          ? `${family.subject}, ${family.compatibility}`
          : `no subject in subjects.json, ${family.compatibility}`;
        const versions = family.versions.map((v) => `v${v.version}`).join(' ');
        if (problems.length === 0) {
          printLine(`ok    ${family.name} (${where}): ${versions}`);
        } else {
          failed = true;
          printLine(`FAIL  ${family.name} (${where}): ${versions}`);
          for (const problem of problems) printLine(`      ${problem}`);
        }
      }
      if (failed) process.exitCode = 1;
    });

  schemas
    .command('register')
    .description('register every version of every mapped schema under its subject, oldest first (idempotent)')
    .option('--dir <dir>', 'folder with the .avsc files', AVRO_DIR)
    .option('--prefix <prefix>', 'put this before every subject name (e.g. a test or staging namespace)', '')
    .addHelpText(
      'after',
      '\nExamples:\n  sluice schemas register\n  SLUICE_REGISTRY_URL=https://registry.example.com sluice schemas register',
    )
    .action(async (opts: DirOption & { prefix: string }) => {
      const client = new RegistryClient(loadConfig().registry.url);
      await registerSchemas(client, loadCatalog(opts.dir), {
        subjectPrefix: opts.prefix,
        onFamily: (done) => printLine(formatRegistration(done)),
      });
    });

  schemas
    .command('list')
    .description('print every subject in the registry with its versions, ids and compatibility')
    .option('--json', 'one JSON object per subject')
    .action(async (opts: { json?: boolean }) => {
      const client = new RegistryClient(loadConfig().registry.url);
      const subjects = await client.subjects();
      if (subjects.length === 0 && !opts.json) printLine(`no subjects in the registry at ${client.url}`);
      for (const subject of subjects) {
        const versions = await Promise.all((await client.versions(subject)).map((v) => client.version(subject, v)));
        const compatibility = await client.compatibility(subject);
        if (opts.json) {
          printLine(
            JSON.stringify({ subject, compatibility, versions: versions.map(({ version, id }) => ({ version, id })) }),
          );
        } else {
          printLine(`${subject}  ${compatibility}  ${versions.map((v) => `v${v.version}=id ${v.id}`).join(', ')}`);
        }
      }
    });
}
