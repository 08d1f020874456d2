/**
 * Prints how the folders of src/ depend on each other: one line per folder with
 * the folders it imports, then every cycle between folders. A model codebase has
 * layers that point one way, so the cycle list should be empty.
 *
 *   npx tsx scripts/layers.ts [--json]
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(__dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The top-level unit a file belongs to: its folder under src/, or the file itself at the root. */
function unitOf(path: string): string {
  const [first = '', second] = relative(root, path).split('/');
  return second === undefined ? first.replace(/\.ts$/, '') : first;
}

const importPattern = /(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g;

export function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(root)) {
    const from = unitOf(file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const match of readFileSync(file, 'utf8').matchAll(importPattern)) {
      const target = resolve(dirname(file), match[1] ?? '');
      if (!target.startsWith(root + '/')) continue;
      const to = unitOf(target.endsWith('.ts') ? target : `${target}.ts`);
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

/** Strongly connected components with more than one folder (Tarjan). */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    order.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!order.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, order.get(next)!));
    }
    if (low.get(node) === order.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!order.has(node)) visit(node);
  return found;
}

if (require.main === module) {
  const graph = folderGraph();
  const found = cycles(graph);
  if (process.argv.includes('--json')) {
    const edges = Object.fromEntries([...graph].map(([k, v]) => [k, [...v].sort()]));
    console.log(JSON.stringify({ edges, cycles: found }, null, 2));
  } else {
    for (const [folder, edges] of [...graph].sort(([a], [b]) => a.localeCompare(b)))
      console.log(`${folder.padEnd(10)} -> ${[...edges].sort().join(', ') || '(nothing)'}`);
    console.log(
      found.length === 0 ? '\nno cycles' : `\ncycles:\n${found.map((c) => `  ${c.join(' <-> ')}`).join('\n')}`,
    );
  }
}
