import { accessSync, constants } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { runProcess } from "./run.js";

/**
 * A real Chromium for the browser tests: Debian's `chromium` package driven by playwright-core
 * (which brings no browser of its own). The binary is looked up in `DGENT_CHROMIUM`, then the
 * usual Debian/Ubuntu paths; when none is there and the process runs as root, the harness installs
 * it with `apt-get install -y chromium`. When it still has no browser, `launchBrowser` rejects with
 * what it tried: the test fails, it never skips.
 */

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium", "/snap/bin/chromium"];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findChromium(): string | null {
  const fromEnv = process.env.DGENT_CHROMIUM;
  if (fromEnv) return executable(fromEnv) ? fromEnv : null;
  return CANDIDATES.find(executable) ?? null;
}

let installing: string | null = null;

/** The Chromium binary, installing Debian's package first when it is missing. Throws with the reason otherwise. */
export async function chromiumPath(): Promise<string> {
  const found = findChromium();
  if (found) return found;
  if (process.env.DGENT_CHROMIUM) {
    throw new Error(`DGENT_CHROMIUM=${process.env.DGENT_CHROMIUM} is not an executable file`);
  }
  if (installing === null) {
    const root = typeof process.getuid === "function" && process.getuid() === 0;
    if (!root) {
      throw new Error(`no Chromium found (looked in ${CANDIDATES.join(", ")}); install it (apt-get install -y chromium) or set DGENT_CHROMIUM`);
    }
    // Only once per process: a failed install is not retried by every test.
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    // One apt-get at a time across test files (power-loss/provision.sh installs FUSE through the
    // same lock file), and dpkg's own lock waited for rather than failed on.
    const apt = (...args: string[]) =>
      runProcess("flock", ["-w", "900", "/tmp/dgent-apt.lock", "apt-get", "-o", "DPkg::Lock::Timeout=600", ...args], { env, timeout: 1_200_000 });
    let result = await apt("install", "-y", "--no-install-recommends", "chromium");
    if (result.status !== 0) {
      await apt("update");
      result = await apt("install", "-y", "--no-install-recommends", "chromium");
    }
    installing = result.status === 0 ? "" : `${result.error?.message ?? ""}\n${(result.stderr ?? "").slice(-2000)}`;
  }
  const after = findChromium();
  if (after) return after;
  throw new Error(`no Chromium found (looked in ${CANDIDATES.join(", ")}) and \`apt-get install -y chromium\` did not provide one:\n${installing}`);
}

/**
 * Launches headless Chromium. `--no-sandbox` because the test machines run as root, where
 * Chromium's sandbox refuses to start; the pages it opens are the tests' own local server.
 */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = await chromiumPath();
  try {
    return await chromium.launch({
      executablePath,
      headless: true,
      args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
      timeout: 60_000,
    });
  } catch (error) {
    throw new Error(`Chromium at ${executablePath} did not start: ${error instanceof Error ? error.message : String(error)}`);
  }
}
