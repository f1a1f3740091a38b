import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSafetensors, type SafeTensor, serializeSafetensors } from "../../src/model/safetensors.ts";

function bytesOfHeader(json: string): Uint8Array {
  const body = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

function withData(json: string, data: number[]): Uint8Array {
  const h = bytesOfHeader(json);
  const out = new Uint8Array(h.length + data.length);
  out.set(h);
  out.set(data, h.length);
  return out;
}

describe("safetensors", () => {
  it("lays out a tiny file byte by byte", () => {
    const bytes = serializeSafetensors(
      {
        b: { dtype: "I32", shape: [2], data: Int32Array.from([1, -2]) },
        a: { dtype: "F32", shape: [1, 1], data: Float32Array.from([1.5]) },
      },
      { k: "v" },
    );
    const json =
      '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}}';
    const padded = json + " ".repeat((8 - (json.length % 8)) % 8);
    assert.equal(padded.length % 8, 0);
    const expected = [
      ...[136, 0, 0, 0, 0, 0, 0, 0],
      ...Buffer.from(padded, "utf8"),
      ...[0x00, 0x00, 0xc0, 0x3f], // 1.5f little-endian
      ...[0x01, 0x00, 0x00, 0x00], // 1
      ...[0xfe, 0xff, 0xff, 0xff], // -2
    ];
    // 135 bytes of JSON + 1 space = 136, so the data starts at byte 144.
    assert.equal(json.length, 135);
    assert.equal(padded.length, 136);
    assert.deepEqual([...bytes], expected);
  });

  it("round-trips tensors and metadata, including empty tensors", () => {
    const tensors: Record<string, SafeTensor> = {
      "x.weight": { dtype: "F32", shape: [2, 3], data: Float32Array.from([0, -1, 2.5, 1e-7, 3, -4]) },
      ids: { dtype: "I32", shape: [3], data: Int32Array.from([7, 2 ** 31 - 1, -(2 ** 31)]) },
      empty: { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
    };
    const parsed = parseSafetensors(serializeSafetensors(tensors, { format: "pt" }));
    assert.deepEqual(parsed.metadata, { format: "pt" });
    assert.deepEqual(parsed.tensors, tensors);
  });

  it("reads files whose data does not start 4-byte aligned", () => {
    // Header of odd length (no padding) as other writers may produce.
    const json = '{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} ';
    assert.notEqual((8 + json.length) % 4, 0);
    const parsed = parseSafetensors(withData(json, [0, 0, 0xc0, 0x3f]));
    assert.deepEqual([...(parsed.tensors.t!.data as Float32Array)], [1.5]);
  });

  it("rejects corrupt inputs with errors naming the file", () => {
    const f = "ckpt/model.safetensors";
    assert.throws(
      () => parseSafetensors(new Uint8Array(5), f),
      /ckpt\/model.safetensors: truncated: 5 bytes/,
    );
    const good = serializeSafetensors({ t: { dtype: "F32", shape: [2], data: Float32Array.from([1, 2]) } });
    assert.throws(
      () => parseSafetensors(good.subarray(0, good.length - 1), f),
      /^Error: ckpt\/model.safetensors: data section has 7 bytes but the tensors cover 8|data_offsets end 8 is beyond/,
    );
    const long = good.slice();
    new DataView(long.buffer).setBigUint64(0, 10_000n, true);
    assert.throws(
      () => parseSafetensors(long, f),
      /model.safetensors: header length 10000 goes beyond the end of the file/,
    );
    assert.throws(
      () => parseSafetensors(bytesOfHeader("{not json"), f),
      /model.safetensors: header is not valid JSON/,
    );
    assert.throws(
      () =>
        parseSafetensors(withData('{"t":{"dtype":"Q8","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), f),
      /model.safetensors: tensor "t": unsupported dtype "Q8"/,
    );
    assert.throws(
      () =>
        parseSafetensors(
          withData(
            '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
            [0, 0, 0, 0, 0, 0, 0, 0],
          ),
          f,
        ),
      /tensor "b": data_offsets \[4, 8\] overlap/,
    );
    assert.throws(
      () =>
        parseSafetensors(
          withData('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', [0, 0, 0, 0, 0, 0, 0, 0]),
          f,
        ),
      /tensor "a": shape \[3\] F32 needs 12 bytes, data_offsets span 8/,
    );
    assert.throws(
      () =>
        parseSafetensors(
          withData('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', [0, 0, 0, 0, 0, 0, 0, 0]),
          f,
        ),
      /gap in the data section/,
    );
  });

  it("rejects inconsistent tensors on write", () => {
    assert.throws(
      () => serializeSafetensors({ t: { dtype: "F32", shape: [3], data: new Float32Array(2) } }),
      /"t" shape \[3\] needs 3 values, got 2/,
    );
    assert.throws(
      () => serializeSafetensors({ t: { dtype: "I32", shape: [1], data: new Float32Array(1) } }),
      /does not match dtype I32/,
    );
  });
});
