/**
 * The safetensors file format: in-memory (de)serialisation, streaming file reads and writes,
 * sharded checkpoints (`model.safetensors.index.json`) and the F16/BF16 ↔ float32 conversions.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON
 * `{"__metadata__": {..}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}` padded
 * with spaces so the data starts on an 8-byte boundary, then the raw little-endian tensor
 * bytes, tensors in sorted-name order without gaps (offsets relative to the data start).
 *
 * Files are read tensor by tensor through a file descriptor: a model file may be larger than
 * the 2 GiB a single Node read allows, and only one tensor's bytes are held at a time.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { readJsonFile, writeJsonAtomic } from "../io/files.ts";

export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32";

export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** F32: Float32Array, I32: Int32Array, F16/BF16: the raw 16-bit words. */
  data: Float32Array | Int32Array | Uint16Array;
}

type ArrayCtor = typeof Float32Array | typeof Int32Array | typeof Uint16Array;

const DTYPES: Record<SafetensorsDtype, { bytes: number; array: ArrayCtor }> = {
  F32: { bytes: 4, array: Float32Array },
  F16: { bytes: 2, array: Uint16Array },
  BF16: { bytes: 2, array: Uint16Array },
  I32: { bytes: 4, array: Int32Array },
};

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "SafetensorsError";
  }
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------
// 16-bit floats

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half → float32 (exact). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 → IEEE half, rounding to nearest even (overflow → ±inf, as torch's .half()). */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** bfloat16 → float32 (exact: the upper half of the float32 bits). */
export function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

/** float32 → bfloat16, rounding to nearest even; NaN stays NaN. */
export function floatToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The values of a floating-point tensor as float32 (F16/BF16 widened exactly). */
export function toFloat32(t: SafeTensor, what = "tensor"): Float32Array {
  if (t.dtype === "F32") return t.data as Float32Array;
  if (t.dtype === "I32") throw new Error(`${what}: expected a floating-point tensor, got I32`);
  const src = t.data as Uint16Array;
  const out = new Float32Array(src.length);
  const conv = t.dtype === "F16" ? halfToFloat : bf16ToFloat;
  for (let i = 0; i < src.length; i++) out[i] = conv(src[i]!);
  return out;
}

/** float32 values stored as `dtype` (F32 is copied only when `copy`). */
export function fromFloat32(
  data: Float32Array,
  shape: number[],
  dtype: "F32" | "F16" | "BF16",
  copy = false,
): SafeTensor {
  if (dtype === "F32") return { dtype, shape, data: copy ? Float32Array.from(data) : data };
  const out = new Uint16Array(data.length);
  const conv = dtype === "F16" ? floatToHalf : floatToBf16;
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]!);
  return { dtype, shape, data: out };
}

// ---------------------------------------------------------------------------------------------
// In-memory form

interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data_offsets: [number, number];
}

function buildHeader(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): { json: Buffer; names: string[]; dataBytes: number } {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") throw new Error(`safetensors: "__metadata__" cannot be a tensor name`);
    const t = tensors[name]!;
    const spec = DTYPES[t.dtype];
    if (!spec)
      throw new Error(`safetensors: tensor "${name}" has unsupported dtype ${JSON.stringify(t.dtype)}`);
    if (!(t.data instanceof spec.array))
      throw new Error(`safetensors: tensor "${name}" data does not match dtype ${t.dtype}`);
    if (numel(t.shape) !== t.data.length) {
      throw new Error(
        `safetensors: tensor "${name}" shape [${t.shape}] needs ${numel(t.shape)} values, got ${t.data.length}`,
      );
    }
    const size = t.data.length * spec.bytes;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  return { json, names, dataBytes: offset };
}

function bytesOf(d: SafeTensor["data"]): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export function serializeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { json, names, dataBytes } = buildHeader(tensors, metadata);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const b = bytesOf(tensors[name]!.data);
    out.set(b, pos);
    pos += b.byteLength;
  }
  return out;
}

/** Checks a parsed header; returns the entries and the metadata. */
function checkHeader(
  header: unknown,
  dataLen: number,
  fail: (msg: string) => never,
): { entries: [string, HeaderEntry][]; metadata: Record<string, string> } {
  if (typeof header !== "object" || header === null || Array.isArray(header))
    fail("header is not a JSON object");
  const metadata: Record<string, string> = {};
  const entries: [string, HeaderEntry][] = [];
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null) fail(`__metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) fail(`tensor "${name}": entry is not an object`);
    if (typeof e.dtype !== "string" || !Object.hasOwn(DTYPES, e.dtype)) {
      fail(
        `tensor "${name}": unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPES).join(", ")})`,
      );
    }
    const spec = DTYPES[e.dtype as SafetensorsDtype];
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
      fail(`tensor "${name}": shape must be an array of non-negative integers`);
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((o) => Number.isInteger(o) && o >= 0) ||
      off[0] > off[1]
    ) {
      fail(`tensor "${name}": data_offsets must be [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen)
      fail(`tensor "${name}": data_offsets end ${end} is beyond the data section (${dataLen} bytes)`);
    const want = numel(shape as number[]) * spec.bytes;
    if (end - begin !== want) {
      fail(
        `tensor "${name}": shape [${shape}] ${e.dtype} needs ${want} bytes, data_offsets span ${end - begin}`,
      );
    }
    spans.push({ name, begin, end });
    entries.push([
      name,
      { dtype: e.dtype as SafetensorsDtype, shape: shape as number[], data_offsets: [begin, end] },
    ]);
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const s of spans) {
    if (s.begin < cursor)
      fail(`tensor "${s.name}": data_offsets [${s.begin}, ${s.end}] overlap the previous tensor`);
    if (s.begin > cursor) fail(`tensor "${s.name}": gap in the data section before offset ${s.begin}`);
    cursor = s.end;
  }
  if (cursor !== dataLen) fail(`data section has ${dataLen} bytes but the tensors cover ${cursor}`);
  return { entries, metadata };
}

function parseHeaderJson(bytes: Uint8Array, fail: (msg: string) => never): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
}

export function parseSafetensors(
  bytes: Uint8Array,
  file = "<safetensors>",
): { tensors: Record<string, SafeTensor>; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new SafetensorsError(file, msg);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, the header length alone needs 8`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8))
    fail(`header length ${n} goes beyond the end of the file (${bytes.length} bytes)`);
  const hlen = Number(n);
  const header = parseHeaderJson(bytes.subarray(8, 8 + hlen), fail);
  const dataStart = 8 + hlen;
  const { entries, metadata } = checkHeader(header, bytes.length - dataStart, fail);
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, e] of entries) {
    const [begin, end] = e.data_offsets;
    // Copy: the data may not be aligned for its element size inside the file buffer.
    const copy = bytes.slice(dataStart + begin, dataStart + end);
    tensors[name] = { dtype: e.dtype, shape: e.shape, data: new DTYPES[e.dtype].array(copy.buffer) };
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------------
// Files

/** An open safetensors file whose tensors are read one at a time. */
export class SafetensorsReader {
  readonly metadata: Record<string, string>;
  private readonly entries: Map<string, HeaderEntry>;
  private readonly dataStart: number;
  private fd: number | null;

  constructor(readonly file: string) {
    const fail = (msg: string): never => {
      throw new SafetensorsError(file, msg);
    };
    if (!existsSync(file)) throw new SafetensorsError(file, "file not found");
    this.fd = openSync(file, "r");
    try {
      const size = (() => {
        const buf = Buffer.alloc(8);
        const got = readSync(this.fd!, buf, 0, 8, 0);
        if (got < 8) fail(`truncated: ${got} bytes, the header length alone needs 8`);
        return buf.readBigUInt64LE(0);
      })();
      const fileSize = BigInt(fstatSync(this.fd).size);
      if (size > fileSize - 8n)
        fail(`header length ${size} goes beyond the end of the file (${fileSize} bytes)`);
      const hlen = Number(size);
      const hbuf = Buffer.alloc(hlen);
      readSync(this.fd, hbuf, 0, hlen, 8);
      const header = parseHeaderJson(hbuf, fail);
      this.dataStart = 8 + hlen;
      const { entries, metadata } = checkHeader(header, Number(fileSize) - this.dataStart, fail);
      this.entries = new Map(entries);
      this.metadata = metadata;
    } catch (err) {
      closeSync(this.fd);
      this.fd = null;
      throw err;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): { dtype: SafetensorsDtype; shape: number[] } | undefined {
    const e = this.entries.get(name);
    return e ? { dtype: e.dtype, shape: [...e.shape] } : undefined;
  }

  read(name: string): SafeTensor {
    const e = this.entries.get(name);
    if (!e) throw new SafetensorsError(this.file, `no tensor "${name}"`);
    if (this.fd === null) throw new SafetensorsError(this.file, "reader is closed");
    const [begin, end] = e.data_offsets;
    const buf = new ArrayBuffer(end - begin);
    const view = new Uint8Array(buf);
    let done = 0;
    while (done < view.length) {
      const got = readSync(
        this.fd,
        view,
        done,
        Math.min(view.length - done, 1 << 30),
        this.dataStart + begin + done,
      );
      if (got === 0) throw new SafetensorsError(this.file, `tensor "${name}": unexpected end of file`);
      done += got;
    }
    return { dtype: e.dtype, shape: [...e.shape], data: new DTYPES[e.dtype].array(buf) };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads every tensor of one file. */
export function readSafetensorsFile(file: string): {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
} {
  const r = new SafetensorsReader(file);
  try {
    const tensors: Record<string, SafeTensor> = {};
    for (const n of r.names()) tensors[n] = r.read(n);
    return { tensors, metadata: r.metadata };
  } finally {
    r.close();
  }
}

/**
 * Writes one safetensors file atomically, streaming the tensors to disk one by one (no copy
 * of the whole file in memory).
 */
export function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): void {
  const { json, names } = buildHeader(tensors, metadata);
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fd = openSync(tmp, "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeAll(fd, len);
    writeAll(fd, json);
    for (const name of names) writeAll(fd, bytesOf(tensors[name]!.data));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

export const MODEL_FILE = "model.safetensors";
export const SAFETENSORS_INDEX_SUFFIX = ".index.json";

/**
 * The tensors of a model directory: `<stem>.safetensors`, or the shards listed in
 * `<stem>.safetensors.index.json` (`weight_map`: tensor name → shard file). Returns a lookup
 * that reads a tensor from its file on demand; `close()` releases the files.
 */
export class ShardedReader {
  readonly files: string[];
  private readonly readers = new Map<string, SafetensorsReader>();
  private readonly where = new Map<string, string>();

  constructor(dir: string, stem = "model") {
    const single = join(dir, `${stem}.safetensors`);
    const index = join(dir, `${stem}.safetensors${SAFETENSORS_INDEX_SUFFIX}`);
    if (existsSync(index)) {
      const j = readJsonFile(index) as { weight_map?: unknown };
      const map = j?.weight_map;
      if (typeof map !== "object" || map === null || Array.isArray(map))
        throw new SafetensorsError(index, `field "weight_map" must be an object of tensor name → file`);
      for (const [name, f] of Object.entries(map as Record<string, unknown>)) {
        if (typeof f !== "string")
          throw new SafetensorsError(index, `weight_map."${name}" must be a file name`);
        this.where.set(name, join(dir, f));
      }
      this.files = [...new Set(this.where.values())];
      for (const f of this.files) {
        const r = new SafetensorsReader(f);
        this.readers.set(f, r);
        for (const n of this.namesIn(f)) {
          if (!r.has(n))
            throw new SafetensorsError(f, `tensor "${n}" listed in ${index} is not in this file`);
        }
      }
    } else if (existsSync(single)) {
      const r = new SafetensorsReader(single);
      this.readers.set(single, r);
      for (const n of r.names()) this.where.set(n, single);
      this.files = [single];
    } else {
      throw new SafetensorsError(single, `file not found (nor ${basename(index)})`);
    }
  }

  private namesIn(file: string): string[] {
    return [...this.where.entries()].filter(([, f]) => f === file).map(([n]) => n);
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** The file holding `name` (for error messages). */
  fileOf(name: string): string | undefined {
    return this.where.get(name);
  }

  info(name: string): { dtype: SafetensorsDtype; shape: number[] } | undefined {
    const f = this.where.get(name);
    return f ? this.readers.get(f)!.info(name) : undefined;
  }

  read(name: string): SafeTensor {
    const f = this.where.get(name);
    if (!f) throw new Error(`no tensor "${name}" in ${this.files.join(", ")}`);
    return this.readers.get(f)!.read(name);
  }

  close(): void {
    for (const r of this.readers.values()) r.close();
  }
}

/**
 * Writes `tensors` as `<stem>.safetensors`, or — when they exceed `maxShardBytes` — as shards
 * `<stem>-00001-of-0000N.safetensors` with the index file transformers writes
 * (`metadata.total_size`, `weight_map`). Returns the files written.
 */
export function writeShardedSafetensors(
  dir: string,
  tensors: Record<string, SafeTensor>,
  opts: { stem?: string; maxShardBytes?: number; metadata?: Record<string, string> } = {},
): string[] {
  const stem = opts.stem ?? "model";
  const max = opts.maxShardBytes ?? 2 * 1024 ** 3;
  const names = Object.keys(tensors).sort();
  const size = (n: string) => tensors[n]!.data.byteLength;
  const total = names.reduce((s, n) => s + size(n), 0);
  if (total <= max) {
    writeSafetensorsFile(join(dir, `${stem}.safetensors`), tensors, opts.metadata);
    return [`${stem}.safetensors`];
  }
  const shards: string[][] = [[]];
  let current = 0;
  for (const n of names) {
    if (current > 0 && current + size(n) > max) {
      shards.push([]);
      current = 0;
    }
    shards[shards.length - 1]!.push(n);
    current += size(n);
  }
  const pad = (i: number) => String(i).padStart(5, "0");
  const files = shards.map((_, i) => `${stem}-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((group, i) => {
    const part: Record<string, SafeTensor> = {};
    for (const n of group) {
      part[n] = tensors[n]!;
      weightMap[n] = files[i]!;
    }
    writeSafetensorsFile(join(dir, files[i]!), part, opts.metadata);
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  writeJsonAtomic(join(dir, `${stem}.safetensors${SAFETENSORS_INDEX_SUFFIX}`), index);
  return [...files, `${stem}.safetensors${SAFETENSORS_INDEX_SUFFIX}`];
}
