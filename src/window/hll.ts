import { WindowStateError } from './errors';

/**
 * HyperLogLog (Flajolet et al. 2007) with a 64-bit hash and linear counting
 * for small cardinalities. Written here rather than taken from a package
 * because the register layout is part of Sluice's contract: partial sketches
 * from different partitions are merged register by register (element-wise
 * max) after they leave this process, so the layout must be fixed, documented
 * and serialisable. Standard error is about 1.04 / sqrt(2^precision).
 *
 * Small sketches stay sparse (index -> rank) in memory and in JSON, so a
 * window key with a handful of values does not cost 2^precision bytes.
 */

export const HLL_MIN_PRECISION = 4;
export const HLL_MAX_PRECISION = 16;

/** Serialised sketch: sparse pairs [index, rank, index, rank, ...] sorted by index, or dense registers in base64. */
export type HllJson = { p: number; sparse: number[] } | { p: number; dense: string };

/** MurmurHash3 (x86, 32-bit) over the string's UTF-16 code units, two per block. */
function murmur3(value: string, seed: number): number {
  let h = seed | 0;
  const len = value.length;
  let i = 0;
  for (; i + 1 < len; i += 2) {
    let k = value.charCodeAt(i) | (value.charCodeAt(i + 1) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < len) {
    let k = value.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SEED_HIGH = 0x9747b28c;
const SEED_LOW = 0x5bd1e995;

function alpha(m: number): number {
  if (m === 16) return 0.673;
  if (m === 32) return 0.697;
  if (m === 64) return 0.709;
  return 0.7213 / (1 + 1.079 / m);
}

export function checkPrecision(precision: number): void {
  if (!Number.isInteger(precision) || precision < HLL_MIN_PRECISION || precision > HLL_MAX_PRECISION) {
    throw new RangeError(
      `HyperLogLog precision must be an integer from ${HLL_MIN_PRECISION} to ${HLL_MAX_PRECISION}, got ${precision}`,
    );
  }
}

export class HyperLogLog {
  readonly precision: number;
  private readonly m: number;
  /** Register index -> rank, while few registers are set. */
  private sparse: Map<number, number> | null = new Map();
  private dense: Uint8Array | null = null;

  constructor(precision: number) {
    checkPrecision(precision);
    this.precision = precision;
    this.m = 1 << precision;
  }

  /** Sparse registers cost ~40 bytes each in a Map; past m/32 of them a dense array is smaller. */
  private get sparseLimit(): number {
    return this.m >>> 5;
  }

  add(value: string): void {
    const p = this.precision;
    const high = murmur3(value, SEED_HIGH);
    const index = high >>> (32 - p);
    // Rank = position of the first 1-bit in the 64 - p hash bits after the index.
    const rest = (high << p) >>> 0;
    let rank: number;
    if (rest !== 0) rank = Math.clz32(rest) + 1;
    else {
      const low = murmur3(value, SEED_LOW);
      rank = 32 - p + (low === 0 ? 33 : Math.clz32(low) + 1);
    }
    this.setMax(index, rank);
  }

  private setMax(index: number, rank: number): void {
    const dense = this.dense;
    if (dense !== null) {
      if (dense[index]! < rank) dense[index] = rank;
      return;
    }
    const sparse = this.sparse!;
    const current = sparse.get(index);
    if (current === undefined || current < rank) {
      sparse.set(index, rank);
      if (sparse.size > this.sparseLimit) this.densify();
    }
  }

  private densify(): void {
    const dense = new Uint8Array(this.m);
    for (const [index, rank] of this.sparse!) dense[index] = rank;
    this.dense = dense;
    this.sparse = null;
  }

  /** Union: afterwards this sketch estimates the distinct count of both inputs together. */
  merge(other: HyperLogLog): void {
    if (other.precision !== this.precision) {
      throw new RangeError(`cannot merge HyperLogLog sketches of precision ${this.precision} and ${other.precision}`);
    }
    if (other.dense !== null) {
      if (this.dense === null) this.densify();
      const mine = this.dense!;
      const theirs = other.dense;
      for (let i = 0; i < mine.length; i++) if (mine[i]! < theirs[i]!) mine[i] = theirs[i]!;
    } else {
      for (const [index, rank] of other.sparse!) this.setMax(index, rank);
    }
  }

  estimate(): number {
    const m = this.m;
    let harmonic = 0;
    let zeros = 0;
    if (this.dense !== null) {
      for (let i = 0; i < m; i++) {
        const r = this.dense[i]!;
        if (r === 0) zeros++;
        harmonic += 2 ** -r;
      }
    } else {
      zeros = m - this.sparse!.size;
      harmonic = zeros;
      for (const r of this.sparse!.values()) harmonic += 2 ** -r;
    }
    const raw = (alpha(m) * m * m) / harmonic;
    // Linear counting is far more accurate while many registers are still empty.
    const estimate = raw <= 2.5 * m && zeros > 0 ? m * Math.log(m / zeros) : raw;
    return Math.round(estimate);
  }

  /** The 2^precision registers (a copy): the layout that partials are merged with, element-wise max. */
  registers(): Uint8Array {
    if (this.dense !== null) return this.dense.slice();
    const out = new Uint8Array(this.m);
    for (const [index, rank] of this.sparse!) out[index] = rank;
    return out;
  }

  clone(): HyperLogLog {
    const copy = new HyperLogLog(this.precision);
    if (this.dense !== null) {
      copy.dense = this.dense.slice();
      copy.sparse = null;
    } else copy.sparse = new Map(this.sparse!);
    return copy;
  }

  toJSON(): HllJson {
    if (this.dense !== null)
      return {
        p: this.precision,
        dense: Buffer.from(this.dense.buffer, this.dense.byteOffset, this.dense.byteLength).toString('base64'),
      };
    const indexes = [...this.sparse!.keys()].sort((a, b) => a - b);
    const sparse: number[] = [];
    for (const index of indexes) sparse.push(index, this.sparse!.get(index)!);
    return { p: this.precision, sparse };
  }

  /** A dense sketch over a copy of `registers` (length 2^precision). */
  static fromRegisters(registers: Uint8Array): HyperLogLog {
    const precision = Math.log2(registers.length);
    checkPrecision(precision);
    const sketch = new HyperLogLog(precision);
    sketch.dense = registers.slice();
    sketch.sparse = null;
    return sketch;
  }

  static fromJSON(json: unknown): HyperLogLog {
    if (typeof json !== 'object' || json === null) throw new WindowStateError('HyperLogLog state is not an object');
    const { p } = json as { p?: unknown };
    if (typeof p !== 'number' || !Number.isInteger(p) || p < HLL_MIN_PRECISION || p > HLL_MAX_PRECISION) {
      throw new WindowStateError(`HyperLogLog state has invalid precision ${String(p)}`);
    }
    const sketch = new HyperLogLog(p);
    const maxRank = 65 - p;
    if ('dense' in json && typeof json.dense === 'string') {
      const bytes = Buffer.from(json.dense, 'base64');
      if (bytes.length !== sketch.m)
        throw new WindowStateError(`HyperLogLog state has ${bytes.length} registers, expected ${sketch.m}`);
      for (const r of bytes)
        if (r > maxRank) throw new WindowStateError(`HyperLogLog register ${r} exceeds the maximum rank ${maxRank}`);
      sketch.dense = new Uint8Array(bytes);
      sketch.sparse = null;
      return sketch;
    }
    if ('sparse' in json && Array.isArray(json.sparse) && json.sparse.length % 2 === 0) {
      const pairs: unknown[] = json.sparse;
      const sparse = new Map<number, number>();
      for (let i = 0; i < pairs.length; i += 2) {
        const index = pairs[i];
        const rank = pairs[i + 1];
        if (
          !Number.isInteger(index) ||
          !Number.isInteger(rank) ||
          (index as number) < 0 ||
          (index as number) >= sketch.m ||
          (rank as number) < 1 ||
          (rank as number) > maxRank
        ) {
          throw new WindowStateError(`HyperLogLog sparse register [${String(index)}, ${String(rank)}] is out of range`);
        }
        sparse.set(index as number, rank as number);
      }
      sketch.sparse = sparse;
      if (sparse.size > sketch.sparseLimit) sketch.densify();
      return sketch;
    }
    throw new WindowStateError('HyperLogLog state has neither sparse nor dense registers');
  }
}

/** Estimate from raw registers, e.g. after merging partial sketches register by register outside this process. */
export function estimateFromRegisters(registers: Uint8Array): number {
  return HyperLogLog.fromRegisters(registers).estimate();
}
