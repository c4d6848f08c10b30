// The model contract of the exported `pixels` ONNX graph, checked from JavaScript.
//
// Shared by the Node.js command (node/restore.mjs) and the browser page (web/app.js); it uses
// nothing but the language, so it runs unchanged in both. It does three things:
//   1. reads the file's `metadata_props` (ONNX Runtime's JS API does not expose custom
//      metadata, so a ~40-line protobuf reader walks the ModelProto's top-level fields);
//   2. validates the `restore.` keys: ours, a format version we know, the `pixels` signature;
//   3. checks the session's input and output names, the part of the contract the graph holds.
// Any mismatch throws a ContractError with one line naming the file and the problem.

export const FORMAT_VERSION = "1";
export const PREFIX = "restore.";

// Every key an exported file carries (runtime/metadata.py is the reference list).
export const REQUIRED_KEYS = [
  "format_version", "signature", "layout", "color_order", "threshold", "stride", "pads_inside",
  "precision", "model_config", "weights_sha256", "exporter", "parity",
];

// The `pixels` signature: uint8 NHWC RGB in, three uint8 NHWC tensors out.
export const INPUT_NAME = "image";
export const OUTPUT_NAMES = ["restored", "mask", "predicted"];

export class ContractError extends Error {
  constructor(message) {
    super(message);
    this.name = "ContractError";
  }
}

// ---- protobuf (wire format) -------------------------------------------------------------
// onnx.proto: ModelProto.metadata_props = 14 (repeated StringStringEntryProto),
// StringStringEntryProto.key = 1, .value = 2. Everything else is skipped by its wire type.
const MODEL_METADATA_PROPS = 14;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;

function readVarint(buf, pos) {
  // Numbers, not 32-bit ints: lengths of large models exceed 2^31 bits' worth of shifting.
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new RangeError("truncated varint");
    const byte = buf[pos++];
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return [value, pos];
    scale *= 128;
  }
  throw new RangeError("varint longer than 10 bytes");
}

// Calls visit(fieldNumber, wireType, start, end) for each field of the message in buf[from, to).
function walkFields(buf, from, to, visit) {
  let pos = from;
  while (pos < to) {
    let tag;
    [tag, pos] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new RangeError("field number 0");
    const start = pos;
    if (wire === 0) {
      [, pos] = readVarint(buf, pos);
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 2) {
      let length;
      [length, pos] = readVarint(buf, pos);
      if (pos + length > to) throw new RangeError("field runs past the end of its message");
      visit(field, wire, pos, pos + length); // the payload, after its length
      pos += length;
      continue;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new RangeError(`unsupported wire type ${wire}`); // groups (3, 4) are not in onnx.proto
    }
    if (pos > to) throw new RangeError("field runs past the end of its message");
    visit(field, wire, start, pos);
  }
}

/**
 * Read the `metadata_props` of a serialized ONNX ModelProto.
 * @param {Uint8Array} bytes the whole .onnx file
 * @returns {Map<string, string>} key -> value (a repeated key keeps its last value)
 */
export function readMetadataProps(bytes) {
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const props = new Map();
  walkFields(bytes, 0, bytes.length, (field, wire, start, end) => {
    if (field !== MODEL_METADATA_PROPS || wire !== 2) return;
    let key = "";
    let value = "";
    walkFields(bytes, start, end, (f, w, s, e) => {
      if (w !== 2) return;
      if (f === ENTRY_KEY) key = utf8.decode(bytes.subarray(s, e));
      else if (f === ENTRY_VALUE) value = utf8.decode(bytes.subarray(s, e));
    });
    props.set(key, value);
  });
  return props;
}

// ---- the restore. metadata ----------------------------------------------------------------

/**
 * Parse and validate a file's `restore.` metadata for the pixels signature.
 * @param {Uint8Array} bytes the whole .onnx file
 * @param {string} source the file's name, for messages
 * @returns {object} the keys without their prefix; threshold and stride as numbers,
 *   model_config / exporter / parity parsed from JSON (parity null when skipped at export)
 */
export function readRestoreMetadata(bytes, source) {
  let props;
  try {
    props = readMetadataProps(bytes);
  } catch (e) {
    throw new ContractError(`${source}: not a readable ONNX file (${e.message})`);
  }
  const ours = {};
  for (const [k, v] of props) if (k.startsWith(PREFIX)) ours[k.slice(PREFIX.length)] = v;
  if (Object.keys(ours).length === 0) {
    throw new ContractError(`${source}: not a restore model (no '${PREFIX}*' metadata)`);
  }
  if (ours.format_version !== FORMAT_VERSION) {
    throw new ContractError(
      `${source}: unknown restore format version ${JSON.stringify(ours.format_version ?? null)} ` +
        `(this reader knows ${FORMAT_VERSION})`,
    );
  }
  const missing = REQUIRED_KEYS.filter((k) => !(k in ours));
  if (missing.length) throw new ContractError(`${source}: restore metadata lacks ${missing.join(", ")}`);
  if (ours.signature !== "pixels" || ours.layout !== "NHWC" || ours.color_order !== "RGB") {
    throw new ContractError(
      `${source}: signature ${ours.signature}/${ours.layout}/${ours.color_order}; ` +
        "this app needs pixels/NHWC/RGB (export with --signature pixels)",
    );
  }
  try {
    return {
      ...ours,
      threshold: Number(ours.threshold),
      stride: Number.parseInt(ours.stride, 10),
      pads_inside: ours.pads_inside === "true",
      model_config: JSON.parse(ours.model_config),
      exporter: JSON.parse(ours.exporter),
      parity: ours.parity === "skipped" ? null : JSON.parse(ours.parity),
    };
  } catch (e) {
    throw new ContractError(`${source}: malformed restore metadata (${e.message})`);
  }
}

/**
 * Check an onnxruntime InferenceSession (node or web) against the pixels signature.
 * @param {object} session an InferenceSession
 * @param {string} source the file's name, for messages
 */
export function checkSession(session, source) {
  const inputs = [...session.inputNames];
  const outputs = [...session.outputNames];
  if (inputs.length !== 1 || inputs[0] !== INPUT_NAME) {
    throw new ContractError(`${source}: graph inputs are [${inputs}], expected [${INPUT_NAME}]`);
  }
  const absent = OUTPUT_NAMES.filter((n) => !outputs.includes(n));
  if (absent.length) {
    throw new ContractError(
      `${source}: graph lacks output ${absent.join(", ")} (has [${outputs}], expected [${OUTPUT_NAMES}])`,
    );
  }
  // Types and ranks, where this onnxruntime version reports them.
  const meta = session.inputMetadata?.[0];
  if (meta && meta.isTensor && (meta.type !== "uint8" || (meta.shape && meta.shape.length !== 4))) {
    throw new ContractError(
      `${source}: input '${INPUT_NAME}' is ${meta.type} of rank ${meta.shape?.length}, expected uint8 [N, H, W, 3]`,
    );
  }
  for (const out of session.outputMetadata ?? []) {
    if (OUTPUT_NAMES.includes(out.name) && out.isTensor && out.type !== "uint8") {
      throw new ContractError(`${source}: output '${out.name}' is ${out.type}, expected uint8`);
    }
  }
}

// ---- pixels --------------------------------------------------------------------------------

/** RGBA (4 bytes a pixel, as PNG decoders and canvases give) -> packed RGB for the graph. */
export function rgbaToRgb(rgba) {
  const n = rgba.length / 4;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = rgba[4 * i];
    rgb[3 * i + 1] = rgba[4 * i + 1];
    rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return rgb;
}

/** Packed RGB + the alpha of an RGBA buffer (or opaque when alphaFrom is null) -> RGBA. */
export function rgbToRgba(rgb, alphaFrom = null) {
  const n = rgb.length / 3;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[4 * i] = rgb[3 * i];
    rgba[4 * i + 1] = rgb[3 * i + 1];
    rgba[4 * i + 2] = rgb[3 * i + 2];
    rgba[4 * i + 3] = alphaFrom ? alphaFrom[4 * i + 3] : 255;
  }
  return rgba;
}

/** One-channel mask (0/255) -> opaque grey RGBA, for display. */
export function greyToRgba(grey) {
  const rgba = new Uint8Array(grey.length * 4);
  for (let i = 0; i < grey.length; i++) {
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = grey[i];
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}
