/**
 * Typed content: codecs (json, text, bytes, or your own `Codec<T>`), the reserved metadata key
 * `dgent.codec` that records which one wrote a datum, and typed views over a store whose reads
 * return decoded values alongside their datums. See README.md.
 */
export {
  CODEC_KEY,
  builtInCodecs,
  bytesCodec,
  codecOf,
  decodeDatum,
  decodeWith,
  encodeWith,
  jsonCodec,
  textCodec,
  whyNotJson,
  type Codec,
  type Json,
  type JsonCodecOptions,
} from "./codec.js";
export { bytes, json, text, typed, type Typed, type TypedHost, type TypedOptions, type TypedPutOptions, type TypedQueryOptions, type TypedStore } from "./typed.js";
