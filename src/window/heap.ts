/**
 * A binary min-heap of items ordered by a numeric priority. Closing windows
 * peeks at the smallest window end instead of scanning every open window, so
 * a watermark that closes nothing costs O(1) and each closed window O(log n).
 */
export class MinHeap<T> {
  private readonly priorities: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  push(priority: number, item: T): void {
    const { priorities, items } = this;
    let i = items.length;
    priorities.push(priority);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = priorities[parent]!;
      if (p <= priority) break;
      priorities[i] = p;
      items[i] = items[parent]!;
      i = parent;
    }
    priorities[i] = priority;
    items[i] = item;
  }

  /** The smallest priority, or +Infinity when empty (check `size` before comparing against +Infinity). */
  peekPriority(): number {
    return this.priorities.length === 0 ? Infinity : this.priorities[0]!;
  }

  pop(): T | undefined {
    const { priorities, items } = this;
    if (items.length === 0) return undefined;
    const top = items[0]!;
    const lastPriority = priorities.pop()!;
    const lastItem = items.pop()!;
    const n = items.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && priorities[right]! < priorities[left]! ? right : left;
        if (priorities[child]! >= lastPriority) break;
        priorities[i] = priorities[child]!;
        items[i] = items[child]!;
        i = child;
      }
      priorities[i] = lastPriority;
      items[i] = lastItem;
    }
    return top;
  }

  clear(): void {
    this.priorities.length = 0;
    this.items.length = 0;
  }
}
