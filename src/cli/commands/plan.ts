/** `edgeq plan`: will it run on my device? Sizes, KV cache, fit and the bandwidth roofline per candidate. */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { buildCandidates, fitOnDevice, kvCacheBytes, REAL_TIME_TOK_PER_SEC, type DeviceFit } from '../../devices/device-plan.js';
import { DEVICES, deviceIds, findDevice, HOST_DEVICE_ID, type Device } from '../../devices/devices.js';
import { hostDevice } from '../../devices/host.js';
import { measureThroughput } from '../../eval/throughput.js';
import { loadModel } from '../../model/load-model.js';
import { readModelConfig } from '../../model/model-dir.js';
import { createProgress, yieldToEventLoop } from '../progress.js';
import { createBackend, fmt, printJson, resolveModelDir, table, withCommonOptions, withModelOption, type CommonArgs } from '../shared.js';

interface PlanArgs extends CommonArgs {
  model: string;
  device: string[];
  ctx: number;
  measure: boolean;
}

/** Decode steps of the host measurement (llama-bench's tg128, capped by the context). */
const MEASURE_TOKENS = 128;

interface HostMeasurement {
  /** What the core executed: the source checkpoint (dense weights run as fp32). */
  what: string;
  decodeTokPerSec: number;
  genTokens: number;
  coreBytesPerToken: number;
  /** Roofline of the core's own executed bytes on the measured bandwidth (mean KV length genTokens/2, fp32). */
  rooflineTokPerSec: number;
  ratio: number;
}

const mib = (b: number): string => `${fmt(b / 2 ** 20, 1)} MiB`;

function deviceTable(dev: Device, fits: DeviceFit[], ctx: number, host?: HostMeasurement): string {
  const rows: (string | number)[][] = [['candidate', 'size', 'bpw', `KV @${ctx}`, 'total', 'fits', 'roofline tok/s', 'real-time']];
  for (const f of fits)
    rows.push([
      f.candidate.label,
      `${f.candidate.exact ? '' : '≤ '}${mib(f.candidate.bytes)}`,
      fmt(f.candidate.bitsPerWeight, 2),
      mib(f.kvBytes),
      mib(f.totalBytes),
      f.fits ? 'yes' : 'NO',
      fmt(f.tokPerSec, 1),
      f.realTime ? 'yes' : 'no',
    ]);
  let s = `${dev.name}: usable ${mib(dev.ramBytes * dev.usableFraction)} of ${mib(dev.ramBytes)}, ${fmt(dev.bandwidth / 1e9, 1)} GB/s (${dev.memory}; source: ${dev.source})\n${table(rows)}\n`;
  if (host)
    s += `measured on edgeq's core (${host.what}): decode ${fmt(host.decodeTokPerSec, 1)} tok/s (tg${host.genTokens}) vs its roofline ${fmt(host.rooflineTokPerSec, 1)} tok/s (${mib(host.coreBytesPerToken)} read per token) = ${fmt(100 * host.ratio, 0)} % of roofline\n`;
  return s;
}

export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan',
  describe: 'Will it run on my device? Exact sizes, KV cache, fit and decode-speed roofline per candidate (nothing is quantized)',
  builder: (y: Argv) =>
    withCommonOptions(withModelOption(y))
      .option('device', {
        alias: 'D',
        type: 'string',
        array: true,
        default: ['all'],
        describe: `Device(s): ${deviceIds().join(', ')} or all`,
      })
      .option('ctx', { alias: 'c', type: 'number', default: 2048, describe: 'Context length for the KV cache and the roofline (capped at max_position_embeddings)' })
      .option('measure', { type: 'boolean', default: true, describe: `On ${HOST_DEVICE_ID}: also run the model on edgeq's core and print measured decode tok/s beside the estimate (--no-measure skips)` })
      .example('$0 plan --model brown-llama-7m --device snapdragon-8-gen-3', 'one device')
      .example('$0 plan --model ./Llama-3.2-1B --device this-machine raspberry-pi-5 --ctx 4096', 'several devices, long context')
      .example('$0 plan --model org/name --json', 'every device, JSON (only config.json is needed with --no-measure)') as Argv<PlanArgs>,
  handler: async (argv) => {
    const progress = createProgress({ quiet: argv.quiet || argv.json });
    try {
      if (!Number.isInteger(argv.ctx) || argv.ctx < 1) throw new UsageError('E_CTX', `--ctx must be a positive integer (got ${argv.ctx})`);
      const ids = argv.device.includes('all') ? deviceIds() : argv.device;
      for (const id of ids) if (id !== HOST_DEVICE_ID) findDevice(id); // validate before any work
      const dir = await resolveModelDir(argv.model, progress);
      const { config } = readModelConfig(dir);
      const ctx = Math.min(argv.ctx, config.maxPositionEmbeddings);
      const cands = buildCandidates(config);
      const devices: { device: Device; fits: DeviceFit[]; host?: HostMeasurement }[] = [];
      for (const id of ids) {
        if (id !== HOST_DEVICE_ID) {
          const d = DEVICES.find((x) => x.id === id)!;
          devices.push({ device: d, fits: fitOnDevice(cands, config, ctx, d.ramBytes * d.usableFraction, d.bandwidth) });
          continue;
        }
        progress.phase('Measuring memory bandwidth');
        await yieldToEventLoop();
        const host = await hostDevice(argv.threads);
        const entry: (typeof devices)[number] = { device: host.device, fits: fitOnDevice(cands, config, ctx, host.device.ramBytes * host.device.usableFraction, host.device.bandwidth) };
        const hasWeights = fs.readdirSync(dir).some((f) => f.endsWith('.safetensors'));
        if (argv.measure && hasWeights) {
          progress.phase('Measuring decode on the core');
          const backend = await createBackend(argv.threads);
          try {
            const model = await loadModel(dir, backend);
            try {
              const genTokens = Math.min(MEASURE_TOKENS, config.maxPositionEmbeddings);
              const r = await measureThroughput(model, { promptTokens: 0, genTokens, reps: 1 });
              const coreBytesPerToken = model.weightBytesPerToken();
              const rooflineTokPerSec = host.device.bandwidth / (coreBytesPerToken + kvCacheBytes(config, genTokens / 2, 4));
              entry.host = {
                what: `${path.basename(dir)} as stored, dense weights executed in fp32`,
                decodeTokPerSec: r.decode!.mean,
                genTokens,
                coreBytesPerToken,
                rooflineTokPerSec,
                ratio: r.decode!.mean / rooflineTokPerSec,
              };
            } finally {
              model.dispose();
            }
          } finally {
            await backend.dispose();
          }
        }
        devices.push(entry);
      }
      progress.stop();
      if (argv.json) {
        printJson({
          model: path.resolve(dir),
          ctx,
          realTimeTokPerSec: REAL_TIME_TOK_PER_SEC,
          candidates: cands,
          devices: devices.map((d) => ({ ...d.device, usableBytes: d.device.ramBytes * d.device.usableFraction, fits: d.fits.map(({ candidate, ...rest }) => ({ candidate: candidate.id, ...rest })), measured: d.host ?? null })),
        });
      } else {
        process.stdout.write(`${path.basename(dir)}: ${fmt(cands[0].params / 1e6, 2)} M parameters, context ${ctx}. Roofline = bandwidth ÷ (weight bytes read per token + KV cache at the full context); real-time ≥ ${REAL_TIME_TOK_PER_SEC} tok/s.\n\n`);
        process.stdout.write(devices.map((d) => deviceTable(d.device, d.fits, ctx, d.host)).join('\n'));
      }
    } finally {
      progress.stop();
    }
  },
};
