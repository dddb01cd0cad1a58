import { ERROR_CODES, type ErrorCode, type ErrorKind } from "./error-codes.js";

export { ERROR_CODES, type ErrorCode, type ErrorKind } from "./error-codes.js";

export interface DgentErrorOptions {
  /** The unit that raised the error: "core", an adapter name, a plugin name, "cli". */
  unit?: string;
  cause?: unknown;
  /** Overrides the table's default when the same code can be either (rare). */
  retryable?: boolean;
  /** Extra, code-specific facts (e.g. `{ limit, actual }`). Never holds secrets. */
  details?: Readonly<Record<string, unknown>>;
}

/** Marks dgent's errors, by a registry symbol, so two copies of dgent in one process recognise each other's. */
const ERROR_BRAND: unique symbol = Symbol.for("dgent.error");

/**
 * Every error dgent throws. `code` is one row of `core/ERRORS.md`. `instanceof` works across two
 * copies of dgent in one process (an adapter package that brings its own): it checks a brand
 * and, for the subclasses, the kind, not the class object.
 */
export class DgentError extends Error {
  readonly [ERROR_BRAND] = true;
  readonly code: ErrorCode;
  readonly unit: string;
  readonly retryable: boolean;
  readonly kind: ErrorKind;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: DgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const info = ERROR_CODES[code];
    this.code = code;
    this.unit = options.unit ?? "core";
    this.kind = info.kind;
    this.retryable = options.retryable ?? info.retryable;
    this.details = options.details ?? {};
  }

  override get name(): string {
    return this.constructor.name;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== "object" || value === null || (value as Record<symbol, unknown>)[ERROR_BRAND] !== true) return false;
    if (this === DgentError) return true;
    const kind = KIND_OF_CLASS.get(this);
    return kind !== undefined ? (value as DgentError).kind === kind : Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** Bad input: fix the call. */
export class ValidationError extends DgentError {}
/** The append-only law refused a write: the id already holds a different datum. */
export class ConflictError extends DgentError {}
/** Configuration or composition is wrong: fix the config or the code that builds the store. */
export class ConfigError extends DgentError {}
/** The backend failed or holds something unexpected. */
export class BackendError extends DgentError {}
/** The backend cannot be reached now; worth retrying or degrading. */
export class UnavailableError extends DgentError {}
/** A size or entropy budget refused the write before anything was stored. */
export class BudgetError extends DgentError {}
/** The store or adapter is not in a state to take calls (closed, not opened). */
export class LifecycleError extends DgentError {}

const CLASS_BY_KIND: Record<ErrorKind, typeof DgentError> = {
  validation: ValidationError,
  conflict: ConflictError,
  config: ConfigError,
  backend: BackendError,
  unavailable: UnavailableError,
  budget: BudgetError,
  lifecycle: LifecycleError,
};

const KIND_OF_CLASS = new Map<unknown, ErrorKind>(Object.entries(CLASS_BY_KIND).map(([kind, ctor]) => [ctor, kind as ErrorKind]));

/** Creates the error of the right subclass for a code. The one way dgent code makes errors. */
export function dgentError(code: ErrorCode, message: string, options?: DgentErrorOptions): DgentError {
  const Ctor = CLASS_BY_KIND[ERROR_CODES[code].kind];
  return new Ctor(code, message, options);
}

export function isDgentError(value: unknown, code?: ErrorCode): value is DgentError {
  if (!(value instanceof Error)) return false;
  const candidate = value as Partial<DgentError>;
  if (typeof candidate.code !== "string" || !(candidate.code in ERROR_CODES)) return false;
  return code === undefined || candidate.code === code;
}

/**
 * Wraps a foreign error once at a unit's boundary. A DgentError passes through unchanged, so
 * wrapping twice never nests.
 */
export function wrapError(
  error: unknown,
  code: ErrorCode,
  message: string,
  options: Omit<DgentErrorOptions, "cause"> = {},
): DgentError {
  if (isDgentError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return dgentError(code, `${message}: ${reason}`, { ...options, cause: error });
}

/** `DGENT_CONFLICT`: a different datum already holds `id` (the append-only law); nothing was changed. */
export function conflictError(id: string, unit: string) {
  return dgentError(
    "DGENT_CONFLICT",
    `datum ${JSON.stringify(id)} already exists with different content, parent or metadata; datums are immutable`,
    { unit, details: { id } },
  );
}
