/**
 * Typed errors. Every error a user can cause is an EdgeqError with a `code` (stable, for scripts and
 * tests) and a `hint` (what to do about it). The CLI prints `edgeq: <message>` plus the hint on one
 * line each and exits non-zero; library code never calls process.exit.
 */
export class EdgeqError extends Error {
  override readonly name: string = 'EdgeqError';
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** A file's bytes are not what its format says (truncated, corrupt, hostile). */
export class FormatError extends EdgeqError {
  override readonly name = 'FormatError';
  constructor(
    code: string,
    message: string,
    readonly file?: string,
    hint?: string,
  ) {
    super(code, file ? `${file}: ${message}` : message, hint);
  }
}

/** A configuration or architecture edgeq does not support. */
export class UnsupportedError extends EdgeqError {
  override readonly name = 'UnsupportedError';
}

/** A file the user must provide is missing. */
export class MissingFileError extends EdgeqError {
  override readonly name = 'MissingFileError';
}

/** Weights contain NaN or Inf. */
export class NonFiniteWeightError extends EdgeqError {
  override readonly name = 'NonFiniteWeightError';
  constructor(
    readonly tensor: string,
    readonly index: number,
    readonly value: number,
  ) {
    super(
      'E_NONFINITE_WEIGHT',
      `tensor '${tensor}' has a non-finite value (${value}) at flat index ${index}`,
      'the checkpoint is corrupt or was saved after a diverged training step; re-export it from a healthy checkpoint',
    );
  }
}

/** Bad command-line usage or option values. */
export class UsageError extends EdgeqError {
  override readonly name = 'UsageError';
}

/** Network / hub problems. */
export class HubError extends EdgeqError {
  override readonly name = 'HubError';
}
