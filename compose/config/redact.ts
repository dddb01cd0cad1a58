/**
 * Secrets out of anything that is printed: `dgent config print`, error messages that quote a
 * value. One implementation for all of dgent, in the kernel (`core/redact.ts`) so that adapters
 * use it too; these are its names for config files.
 */
export { MASK, REDACTED, isSecretKey, isSecretParam, redactConfig, redactString, redactText, redactUrl } from "../../core/redact.js";
