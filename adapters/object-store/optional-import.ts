import { dgentError } from "../../core/errors.js";

/**
 * Imports an optional peer dependency. When it is not installed, throws
 * `DGENT_MISSING_DEPENDENCY` naming the package and the command that installs it; any other
 * failure while loading it is passed on unchanged.
 */
export async function importOptional<T>(
  pkg: string,
  unit: string,
  load: (specifier: string) => Promise<unknown> = (specifier) => import(specifier),
): Promise<T> {
  try {
    return (await load(pkg)) as T;
  } catch (error) {
    if (isNotFound(error, pkg)) {
      throw dgentError(
        "DGENT_MISSING_DEPENDENCY",
        `the ${unit} tier needs the package "${pkg}", which is not installed; run: npm install ${pkg}`,
        { unit, cause: error, details: { package: pkg } },
      );
    }
    throw error;
  }
}

function isNotFound(error: unknown, pkg: string): boolean {
  const e = error as { code?: unknown; message?: unknown };
  if (e?.code !== "ERR_MODULE_NOT_FOUND" && e?.code !== "MODULE_NOT_FOUND") return false;
  // Only the package itself: a broken install that misses one of *its* dependencies is reported as is.
  return typeof e.message === "string" && e.message.includes(`'${pkg}'`);
}
