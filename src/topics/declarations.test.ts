import { parseTopicFamily } from './declarations';

const family = (extra = '') => `name: orders\npartitions: 3\nreplicationFactor: 1\nretention: 12h\n${extra}`;

describe('topic declarations', () => {
  it('expands companions with their own retention and the parent partitions', () => {
    const specs = parseTopicFamily(
      family('companions:\n  dlq: {}\n  retry: { count: 3, retention: 30m }\n  late: { retention: 2d }\n'),
      'f.yaml',
      'p.',
    );
    expect(specs.map((s) => s.name)).toEqual([
      'p.orders',
      'p.orders.dlq',
      'p.orders.retry.1',
      'p.orders.retry.2',
      'p.orders.retry.3',
      'p.orders.late',
    ]);
    expect(specs[0]!.config).toEqual({ 'cleanup.policy': 'delete', 'retention.ms': String(12 * 3_600_000) });
    expect(specs[1]!.config['retention.ms']).toBe(String(30 * 86_400_000));
    expect(specs[2]!.config['retention.ms']).toBe(String(30 * 60_000));
    expect(specs[5]!.config['retention.ms']).toBe(String(2 * 86_400_000));
    expect(specs.every((s) => s.partitions === 3)).toBe(true);
  });

  it("gives companions the topic's max.message.bytes plus room for Sluice's headers, unless they set their own", () => {
    const specs = parseTopicFamily(
      family(
        'config:\n  max.message.bytes: "1048588"\ncompanions:\n  dlq: {}\n  late: { config: { max.message.bytes: "2000000" } }\n',
      ),
      'f.yaml',
    );
    expect(specs.map((s) => s.config['max.message.bytes'])).toEqual(['1048588', String(1048588 + 65536), '2000000']);
  });

  it('accepts infinite retention and raw configs', () => {
    const [spec] = parseTopicFamily(family('config:\n  min.insync.replicas: 2\n').replace('12h', 'infinite'), 'f.yaml');
    expect(spec!.config).toEqual({ 'cleanup.policy': 'delete', 'retention.ms': '-1', 'min.insync.replicas': '2' });
  });

  it.each([
    ['partitions: 0', 'f.yaml: partitions:'],
    ['partitions: three', 'f.yaml: partitions:'],
    ['name: "bad name"', 'f.yaml: name: expected a Kafka topic name'],
  ])('rejects %s naming the field', (line, message) => {
    const key = line.split(':')[0]!;
    const yaml = family().replace(new RegExp(`^${key}:.*$`, 'm'), line);
    expect(() => parseTopicFamily(yaml, 'f.yaml')).toThrow(message);
  });

  it('rejects unknown fields, bad companions and named configs given raw', () => {
    expect(() => parseTopicFamily(family('partitons: 4\n'), 'f.yaml')).toThrow(/f\.yaml: .*partitons/);
    expect(() => parseTopicFamily(family('companions:\n  retry: { count: -1 }\n'), 'f.yaml')).toThrow(
      'f.yaml: companions.retry.count:',
    );
    expect(() => parseTopicFamily(family('config:\n  retention.ms: 5\n'), 'f.yaml')).toThrow(
      'config.retention.ms: set it through the named field',
    );
    expect(() => parseTopicFamily('name: [', 'f.yaml')).toThrow('f.yaml: not valid YAML');
  });
});
