/** Companion topic names (docs/design.md §3.2): `<topic>.dlq`, `<topic>.retry.<n>`, `<topic>.late`. */
export const dlqTopic = (topic: string) => `${baseTopic(topic)}.dlq`;
export const lateTopic = (topic: string) => `${baseTopic(topic)}.late`;
export const retryTopic = (topic: string, attempt: number) => `${baseTopic(topic)}.retry.${attempt}`;

/** The source topic a companion belongs to: `events.retry.2` → `events`, `events.dlq` → `events`. */
export function baseTopic(topic: string): string {
  return topic.replace(/\.(retry\.\d+|dlq|late)$/, '');
}

/** True for `<topic>.retry.<n>`: the only topics whose records' origin headers Sluice wrote itself. */
export const isRetryTopic = (topic: string) => /\.retry\.\d+$/.test(topic);
