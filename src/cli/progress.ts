/**
 * Progress on stderr with an ETA — an ora spinner only when stderr is a TTY and the user did not ask for
 * --quiet; otherwise silent. The only module that imports ora.
 */
import ora, { type Ora } from 'ora';

export interface Progress {
  /** Set the phase text (resets the ETA clock). */
  phase(text: string): void;
  /** done of total units in the current phase. */
  update(done: number, total: number, detail?: string): void;
  succeed(text: string): void;
  stop(): void;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

class SpinnerProgress implements Progress {
  private spinner: Ora;
  private label = '';
  private t0 = performance.now();
  constructor() {
    this.spinner = ora({ stream: process.stderr, discardStdin: false }).start();
  }
  phase(text: string): void {
    this.label = text;
    this.t0 = performance.now();
    this.spinner.text = text;
  }
  update(done: number, total: number, detail?: string): void {
    const elapsed = (performance.now() - this.t0) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
    this.spinner.text = `${this.label} ${done}/${total} (${pct}%) · ${formatSeconds(elapsed)} elapsed · ETA ${formatSeconds(eta)}${detail ? ` · ${detail}` : ''}`;
  }
  succeed(text: string): void {
    this.spinner.succeed(text);
  }
  stop(): void {
    this.spinner.stop();
  }
}

const silent: Progress = { phase() {}, update() {}, succeed() {}, stop() {} };

export function createProgress(opts: { quiet?: boolean }): Progress {
  return process.stderr.isTTY && !opts.quiet ? new SpinnerProgress() : silent;
}

/** Let a spinner repaint between synchronous chunks of work. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
