/**
 * How a chunk's raw bytes become stored bytes and back: compression with Node's built-in zlib
 * (gzip or brotli; zstd is not in Node 20's zlib, see FORMAT.md), then, when the backup has
 * recipients, encryption with age (`age-encryption`, imported only when used).
 */
import { promisify } from "node:util";
import { brotliDecompress, gunzip } from "node:zlib";
import { dgentError, isDgentError } from "../core/errors.js";
import { importOptional } from "../core/adapter-support.js";
import { UNIT, type Compression } from "./format.js";

const gunzipAsync = promisify(gunzip);
const unbrotliAsync = promisify(brotliDecompress);

type Age = typeof import("age-encryption");

/**
 * Brotli quality and window, and gzip level, of every chunk (compressed on the backup's chunk
 * worker, `worker.ts`). Quality 1: on the benchmark's data about five times as fast as gzip level
 * 3, at the same or a smaller size (benchmarks/results/backup.md); higher qualities cost several
 * times more. A 256 KiB window (2^18) instead of brotli's default 4 MiB: 7.2 against 8.3 ms of CPU
 * per 4 MiB chunk of the benchmark's records, at the same size (0.3594 of the raw bytes); any
 * brotli decoder reads it (windows up to 2^24 need no flag). Quality 0 was 6.1 ms at 0.392.
 */
export const BROTLI_QUALITY = 1;
export const BROTLI_WINDOW = 18;
export const GZIP_LEVEL = 3;

/**
 * zlib's output buffer per step. Its default (16 KiB) makes a 4 MiB chunk hundreds of steps, each
 * a hop from zlib's thread pool back to the event loop with its output copied; one buffer of about
 * the expected size makes it one or two steps (brotli at quality 1 of a 4 MiB chunk: 18 against
 * 60–280 ms on the benchmark machine).
 */
const outputBuffer = (expected: number): number => Math.min(Math.max(expected, 64 * 1024), 64 * 2 ** 20);

/** `rawBytes`: the size the manifest records (the output buffer is sized for it). */
export async function decompress(stored: Buffer, compression: Compression, rawBytes: number): Promise<Buffer> {
  const chunkSize = outputBuffer(rawBytes);
  if (compression === "gzip") return gunzipAsync(stored, { chunkSize });
  if (compression === "brotli") return unbrotliAsync(stored, { chunkSize });
  return stored;
}

/** Encrypts to age recipients (`age1…`). */
export interface Sealer {
  seal(bytes: Buffer): Promise<Buffer>;
}

/** Decrypts with age identities (`AGE-SECRET-KEY-1…`). */
export interface Opener {
  open(bytes: Buffer, archive: string, chunk: string): Promise<Buffer>;
}

async function age(): Promise<Age> {
  try {
    return await importOptional<Age>("age-encryption", UNIT);
  } catch (error) {
    if (!isDgentError(error, "DGENT_MISSING_DEPENDENCY")) throw error;
    throw dgentError("DGENT_MISSING_DEPENDENCY", 'encrypted backups need the package "age-encryption", which is not installed; run: npm install age-encryption', {
      unit: UNIT,
      cause: error,
      details: { package: "age-encryption" },
    });
  }
}

export async function sealer(recipients: readonly string[]): Promise<Sealer> {
  const lib = await age();
  const encrypter = new lib.Encrypter();
  for (const r of recipients) {
    try {
      encrypter.addRecipient(r);
    } catch (error) {
      throw dgentError("DGENT_INVALID_OPTIONS", `--recipient ${JSON.stringify(r.slice(0, 12))}… is not an age recipient (age1…): ${(error as Error).message}`, { unit: UNIT, cause: error });
    }
  }
  return { seal: async (bytes) => Buffer.from(await encrypter.encrypt(bytes)) };
}

/** Identities from the text of an identity file: one `AGE-SECRET-KEY-1…` per line, `#` comments. */
export function parseIdentities(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith("AGE-SECRET-KEY-"));
}

export async function opener(identities: readonly string[]): Promise<Opener> {
  const lib = await age();
  const decrypter = new lib.Decrypter();
  for (const i of identities) decrypter.addIdentity(i);
  return {
    async open(bytes, archive, chunk) {
      if (identities.length === 0) {
        throw dgentError("DGENT_BACKUP_DECRYPT", `${archive} is encrypted with age: give --identity FILE holding a key it was encrypted to`, { unit: UNIT, details: { archive, chunk } });
      }
      try {
        return Buffer.from(await decrypter.decrypt(bytes));
      } catch (error) {
        if (isDgentError(error)) throw error;
        throw dgentError("DGENT_BACKUP_DECRYPT", `chunk ${chunk} of ${archive} cannot be decrypted with the identities given: ${(error as Error).message}`, {
          unit: UNIT,
          cause: error,
          details: { archive, chunk },
        });
      }
    },
  };
}

/** A fresh age key pair, for tests, drills and the runbook (`dgent backup keygen`). */
export async function generateKeyPair(): Promise<{ identity: string; recipient: string }> {
  const lib = await age();
  const identity = await lib.generateIdentity();
  return { identity, recipient: await lib.identityToRecipient(identity) };
}
