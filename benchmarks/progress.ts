/**
 * Progress on stderr. On a terminal: one line rewritten in place (at most ~8 times a second) with
 * the step, what is being measured and the elapsed time. Elsewhere (CI logs, pipes, tests): one
 * plain line per step, nothing rewritten.
 */
export class Progress {
  readonly #write: (text: string) => unknown;
  readonly #tty: boolean;
  readonly #started = Date.now();
  #total: number;
  #step = 0;
  #title = "";
  #lastDraw = 0;
  #drawn = false;
  #detail = "";
  #fraction = 0;

  constructor(write: (text: string) => unknown, tty: boolean, totalSteps: number) {
    this.#write = write;
    this.#tty = tty;
    this.#total = Math.max(1, totalSteps);
  }

  set total(steps: number) {
    this.#total = Math.max(1, steps);
  }

  /** Starts the next step (`sqlite · get`). */
  step(title: string): void {
    this.#step++;
    this.#title = title;
    this.#detail = "";
    this.#fraction = 0;
    if (this.#tty) this.#draw("", 0, true);
    else this.#write(`[${this.#step}/${this.#total}] ${title}  (${this.#elapsed()})\n`);
  }

  /** What the current step is doing now; `fraction` of the step done. */
  update(detail: string, fraction: number): void {
    if (!this.#tty) return;
    this.#detail = detail;
    this.#fraction = fraction;
    this.#draw(detail, fraction, false);
  }

  /** A line that stays (a finished table, a warning). */
  log(line: string): void {
    if (this.#tty && this.#drawn) this.#write("\r\x1b[K");
    this.#write(`${line}\n`);
    this.#drawn = false;
    if (this.#tty) this.#draw(this.#detail, this.#fraction, true);
  }

  /** Clears the live line. */
  done(): void {
    if (this.#tty && this.#drawn) this.#write("\r\x1b[K");
    this.#drawn = false;
  }

  #elapsed(): string {
    const s = Math.round((Date.now() - this.#started) / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  #draw(detail: string, fraction: number, force: boolean): void {
    const t = Date.now();
    if (!force && t - this.#lastDraw < 125) return;
    this.#lastDraw = t;
    const overall = (this.#step - 1 + Math.min(1, Math.max(0, fraction))) / this.#total;
    const width = 20;
    const filled = Math.round(overall * width);
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    const columns = process.stderr.columns || 120; // 0 or undefined when stderr is not a real terminal
    let line = `${bar} ${String(Math.floor(overall * 100)).padStart(3)}%  ${this.#elapsed()}  [${this.#step}/${this.#total}] ${this.#title}${detail ? ` · ${detail}` : ""}`;
    if (line.length > columns - 1) line = `${line.slice(0, columns - 2)}…`;
    this.#write(`\r\x1b[K${line}`);
    this.#drawn = true;
  }
}
