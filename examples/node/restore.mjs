#!/usr/bin/env node
// Restore one PNG with the exported `pixels` ONNX model, from Node.js, without Python.
//
//   node restore.mjs model.onnx input.png output.png [--mask mask.png]
//
// The graph does all the work (normalization, padding, both decoders, thresholding and
// compositing), so this file only decodes the PNG, hands ONNX Runtime the RGB bytes as
// uint8 [1, H, W, 3] and encodes what comes back. Alpha, when the input has it, is kept.
// Exit codes: 0 done, 1 a bad model or image (one line on stderr), 2 a usage error.

import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

import ort from "onnxruntime-node";
import pngjs from "pngjs";

import { checkSession, ContractError, readRestoreMetadata, rgbaToRgb, rgbToRgba } from "../contract.mjs";

const { PNG } = pngjs;

const USAGE = `usage: node restore.mjs MODEL.onnx INPUT.png OUTPUT.png [--mask MASK.png]

Restore INPUT.png with an exported 'pixels' ONNX model and write OUTPUT.png
(RGB, or RGBA keeping the input's alpha). --mask also writes the binary mask
(grey PNG, 255 where pixels were replaced).`;

class UsageError extends Error {}
class UserError extends Error {} // one line for the user, exit 1

function parseArgs(argv) {
  const positional = [];
  let mask = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") return { help: true };
    if (arg === "--mask") {
      if (i + 1 >= argv.length) throw new UsageError("--mask needs a file name");
      mask = argv[++i];
    } else if (arg.startsWith("--mask=")) {
      mask = arg.slice("--mask=".length);
    } else if (arg.startsWith("-") && arg !== "-") {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length !== 3) throw new UsageError(`expected 3 arguments, got ${positional.length}`);
  const [model, input, output] = positional;
  const outputs = [output, mask].filter(Boolean).map((p) => path.resolve(p));
  if (outputs.includes(path.resolve(input)) || outputs.includes(path.resolve(model))) {
    throw new UsageError("an output path is the input image or the model; refusing to overwrite it");
  }
  if (mask && path.resolve(mask) === path.resolve(output)) throw new UsageError("--mask and OUTPUT are the same file");
  return { model, input, output, mask };
}

function readFile(file, what) {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`${file}: cannot read the ${what} (${e.code ?? e.message})`);
  }
}

/** Decode a PNG to RGBA bytes (palette, grey, 16-bit are expanded by pngjs). */
function readPng(file) {
  const bytes = readFile(file, "image");
  try {
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, rgba: png.data, alpha: Boolean(png.alpha) };
  } catch (e) {
    throw new UserError(`${file}: not a readable PNG (${e.message})`);
  }
}

/** Encode and write atomically: a temp file beside the target, renamed into place. */
function writePng(file, width, height, data, colorType, inputColorType) {
  const png = new PNG({ width, height, colorType, inputColorType, inputHasAlpha: inputColorType === 6 });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const encoded = PNG.sync.write(png, { colorType, inputColorType, inputHasAlpha: inputColorType === 6 });
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, encoded);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new UserError(`${file}: cannot write (${e.code ?? e.message})`);
  }
}

/**
 * Load a model file, check it is a `pixels` restore model, and make a CPU session.
 * @returns {Promise<{session: object, metadata: object}>}
 */
export async function loadModel(file) {
  const bytes = readFile(file, "model");
  const metadata = readRestoreMetadata(bytes, file); // refuses before ORT parses anything
  let session;
  try {
    // From bytes, not a path: a graph pointing at external data files cannot pull them in.
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"] });
  } catch (e) {
    throw new UserError(`${file}: ONNX Runtime cannot load it (${String(e.message).split("\n")[0]})`);
  }
  checkSession(session, file);
  return { session, metadata };
}

/**
 * Run the graph on one image.
 * @param {object} session InferenceSession of a pixels model
 * @param {Uint8Array} rgb packed RGB, height * width * 3 bytes
 * @returns {Promise<{restored: Uint8Array, mask: Uint8Array, predicted: Uint8Array}>}
 */
export async function restorePixels(session, rgb, height, width) {
  const image = new ort.Tensor("uint8", rgb, [1, height, width, 3]); // (N, H, W, 3)
  const out = await session.run({ image });
  for (const [name, channels] of [["restored", 3], ["mask", 1], ["predicted", 3]]) {
    const dims = out[name].dims.join(",");
    if (out[name].type !== "uint8" || dims !== [1, height, width, channels].join(",")) {
      throw new ContractError(`output '${name}' is ${out[name].type} [${dims}], expected uint8 [1,${height},${width},${channels}]`);
    }
  }
  return { restored: out.restored.data, mask: out.mask.data, predicted: out.predicted.data };
}

async function main(argv) {
  const args = parseArgs(argv);
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const { session, metadata } = await loadModel(args.model);
  const img = readPng(args.input);

  const start = performance.now();
  const { restored, mask } = await restorePixels(session, rgbaToRgb(img.rgba), img.height, img.width);
  const ms = performance.now() - start;

  // RGBA out when the input had alpha (its alpha kept), RGB otherwise.
  const rgba = rgbToRgba(restored, img.alpha ? img.rgba : null);
  writePng(args.output, img.width, img.height, rgba, img.alpha ? 6 : 2, 6);
  if (args.mask) writePng(args.mask, img.width, img.height, mask, 0, 0);

  const masked = mask.reduce((n, v) => n + (v !== 0), 0) / mask.length;
  console.log(
    `${args.input} (${img.width}x${img.height}) -> ${args.output}: ${(100 * masked).toFixed(1)}% of pixels replaced ` +
      `(threshold ${metadata.threshold}), ${ms.toFixed(1)} ms`,
  );
}

// Run as a command (not when imported).
const invoked = process.argv[1] && fs.existsSync(process.argv[1]) ? fs.realpathSync(process.argv[1]) : null;
if (invoked === fs.realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2)).catch((e) => {
    if (e instanceof UsageError) {
      console.error(`${USAGE}\n\nerror: ${e.message}`);
      process.exit(2);
    }
    if (e instanceof UserError || e instanceof ContractError) {
      console.error(`error: ${e.message}`);
      process.exit(1);
    }
    throw e; // a bug: keep the stack trace
  });
}
