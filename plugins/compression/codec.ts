import { promisify } from "node:util";
import * as zlib from "node:zlib";

/** Algorithms by the name recorded in metadata. */
export type Encoding = "gzip" | "br";

/** Above this size the work goes to libuv's thread pool instead of blocking the event loop. */
export const ASYNC_ABOVE = 64 * 1024;

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);
const brotli = promisify(zlib.brotliCompress);
const unbrotli = promisify(zlib.brotliDecompress);

function brotliOptions(level: number, size: number): zlib.BrotliOptions {
  return {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: level,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size,
    },
  };
}

/** Compresses deterministically: the same bytes and level always give the same output. */
export async function encode(encoding: Encoding, input: Uint8Array, level: number): Promise<Uint8Array> {
  const big = input.byteLength > ASYNC_ABOVE;
  if (encoding === "gzip") {
    const options = { level };
    return big ? gzip(input, options) : zlib.gzipSync(input, options);
  }
  const options = brotliOptions(level, input.byteLength);
  return big ? brotli(input, options) : zlib.brotliCompressSync(input, options);
}

export async function decode(encoding: Encoding, input: Uint8Array): Promise<Uint8Array> {
  const big = input.byteLength > ASYNC_ABOVE / 4;
  if (encoding === "gzip") return big ? gunzip(input) : zlib.gunzipSync(input);
  return big ? unbrotli(input) : zlib.brotliDecompressSync(input);
}

/** Copies a Buffer view into a plain Uint8Array the caller owns. */
export function own(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
