/** A quantization stopped on request (Ctrl-C) once its last finished block was journaled. */
import { EdgeqError } from '../../core/errors.js';

export class QuantizeInterrupted extends EdgeqError {
  override readonly name = 'QuantizeInterrupted';
  constructor(
    /** Blocks journaled (finished) so far, this run's and earlier runs' together. */
    readonly blocksDone: number,
    readonly blocks: number,
    readonly partialDir: string,
  ) {
    super('E_INTERRUPTED', `interrupted after block ${blocksDone} of ${blocks}`, `the finished blocks are journaled in ${partialDir}; resume with --resume`);
  }
}
