/**
 * How the CLI reports failures: one line `edgeq: <message>`, one line `hint: <what to do>`, and an exit
 * code that says what kind of failure it was.
 *   0 success · 1 internal error (a bug: please report) · 2 usage error · 3 bad or missing input
 *   (corrupt file, unsupported model, NaN weights, missing tokenizer) · 4 hub / network
 */
import { EdgeqError, HubError, UsageError } from '../core/errors.js';

export const EXIT = { ok: 0, internal: 1, usage: 2, input: 3, hub: 4 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof HubError) return EXIT.hub;
  if (err instanceof EdgeqError) return EXIT.input;
  return EXIT.internal;
}

export function formatError(err: unknown): string {
  if (err instanceof EdgeqError) return `edgeq: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`;
  const e = err as Error;
  return `edgeq: internal error: ${e?.stack ?? String(err)}\nhint: this is a bug in edgeq; please report it with the command you ran`;
}
