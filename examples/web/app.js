// Restore an image in the browser with the exported `pixels` ONNX model (ONNX Runtime Web, WASM).
//
// No build step: ONNX Runtime Web's ES module and its .wasm files are served straight from
// node_modules (after `npm ci`), and the model contract checks come from ../contract.mjs, the
// same file the Node.js example uses. Serve the examples/ folder with any static server:
//   python -m http.server --directory examples 8000   ->   http://127.0.0.1:8000/web/
// A model can also be given in the address: /web/?model=URL (same origin); ?threads=N and
// ?ep=webgpu see below. `python examples/web/serve.py` serves the page cross-origin isolated.
//
// For automated checks the page keeps its state and last result on `window.restoreDemo`.

import { checkSession, ContractError, greyToRgba, readRestoreMetadata, rgbaToRgb, rgbToRgba } from "../contract.mjs";

const params = new URLSearchParams(location.search);
const dist = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;

// ?ep=webgpu: ONNX Runtime's WebGPU provider where the browser has a WebGPU adapter (the
// WebGPU build of the library, WASM for the rest); otherwise the page says why and runs on WASM.
async function webgpuProblem() {
  if (!("gpu" in navigator)) return "this browser has no WebGPU (navigator.gpu is missing)";
  try {
    return (await navigator.gpu.requestAdapter()) ? null : "WebGPU has no adapter here (no GPU, or it is blocked)";
  } catch (e) {
    return `WebGPU adapter request failed: ${e.message ?? e}`;
  }
}
const wantWebgpu = params.get("ep") === "webgpu";
const gpuProblem = wantWebgpu ? await webgpuProblem() : null;
const provider = wantWebgpu && !gpuProblem ? "webgpu" : "wasm";
const ort = await import(`${dist}${provider === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs"}`);

// The .wasm binary and its loader come from our own origin, never from a CDN.
ort.env.wasm.wasmPaths = dist;
// Threads: on a cross-origin isolated page (COOP/COEP headers, as serve.py sends) ONNX Runtime
// runs its threaded SIMD build, by default on min(4, half the cores) threads; ?threads=N sets N.
// A plain static server sends no such headers, and ONNX Runtime falls back to one thread.
const threads = Number.parseInt(params.get("threads") ?? "", 10);
if (threads > 0) ort.env.wasm.numThreads = threads;
const effectiveThreads = self.crossOriginIsolated
  ? (threads > 0 ? threads : Math.min(4, Math.ceil((navigator.hardwareConcurrency || 1) / 2)))
  : 1;

const $ = (id) => document.getElementById(id);

// state: "idle" (no model) | "loading" | "ready" | "running" | "done" | "error"
const demo = {
  state: "idle", error: null, metadata: null, result: null, rerun,
  provider, providerNote: gpuProblem, isolated: self.crossOriginIsolated, threads: effectiveThreads,
};
window.restoreDemo = demo;

let session = null;
let modelName = null;
let pending = null; // { name, width, height, rgba } decoded image waiting for (or restored by) the model

function setStatus(text, state) {
  demo.state = state;
  demo.error = state === "error" ? text : null;
  $("status").textContent = text;
  $("status").className = state === "error" ? "error" : "";
}

function fail(e) {
  const message = e instanceof ContractError ? e.message : `${e.name ?? "Error"}: ${e.message ?? e}`;
  setStatus(message, "error");
}

// Let the browser paint the status line before a long synchronous WASM call.
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

/** Load and check a model from its bytes. */
async function loadModel(bytes, name) {
  session = null;
  modelName = name;
  setStatus(`Loading ${name} ...`, "loading");
  try {
    const metadata = readRestoreMetadata(bytes, name); // refuses before ORT parses anything
    const created = await ort.InferenceSession.create(bytes, { executionProviders: provider === "webgpu" ? ["webgpu", "wasm"] : ["wasm"] });
    checkSession(created, name);
    session = created;
    demo.metadata = metadata;
    const cfg = metadata.model_config;
    $("meta").textContent =
      `${name}: threshold ${metadata.threshold}, stride ${metadata.stride}, ` +
      `base_channels ${cfg.base_channels}, depth ${cfg.depth}, precision ${metadata.precision}; ` +
      `${provider === "webgpu" ? "WebGPU, " : ""}WASM threads ${effectiveThreads}` +
      (self.crossOriginIsolated ? "" : " (page not cross-origin isolated)") +
      (gpuProblem ? `; WebGPU skipped: ${gpuProblem}` : "");
    setStatus(`Model ${name} ready.` + (pending ? "" : " Choose or drop an image."), "ready");
    if (pending) await restore();
  } catch (e) {
    session = null;
    fail(e instanceof ContractError ? e : new Error(`${name}: ${String(e.message ?? e).split("\n")[0]}`));
  }
}

/** Decode any image the browser can read to RGBA bytes, without colour management. */
async function decodeImage(blob, name) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = $("original");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.clearRect(0, 0, bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { name, width: bitmap.width, height: bitmap.height, rgba: data };
}

function draw(canvasId, width, height, rgba) {
  const canvas = $(canvasId);
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.byteLength), width, height), 0, 0);
}

/** Run the model once on the pending image; returns the inference time in ms. */
async function runOnce() {
  const { width, height, rgba } = pending;
  const image = new ort.Tensor("uint8", rgbaToRgb(rgba), [1, height, width, 3]); // (N, H, W, 3)
  const start = performance.now();
  const out = await session.run({ image });
  const ms = performance.now() - start;
  for (const [name, channels] of [["restored", 3], ["mask", 1], ["predicted", 3]]) {
    const dims = out[name].dims.join(",");
    if (out[name].type !== "uint8" || dims !== [1, height, width, channels].join(",")) {
      throw new ContractError(`${modelName}: output '${name}' is ${out[name].type} [${dims}], expected uint8 [1,${height},${width},${channels}]`);
    }
  }
  demo.result = {
    name: pending.name, width, height, ms,
    restored: out.restored.data, mask: out.mask.data, predicted: out.predicted.data,
  };
  return ms;
}

async function restore() {
  if (!session) {
    setStatus(`Image ${pending.name} loaded; now choose a model.`, demo.state === "error" ? "error" : "idle");
    return;
  }
  setStatus(`Restoring ${pending.name} (${pending.width}x${pending.height}) ...`, "running");
  await nextFrame();
  try {
    const total0 = performance.now();
    const ms = await runOnce();
    const { width, height, restored, mask } = demo.result;
    draw("mask", width, height, greyToRgba(mask));
    draw("restored", width, height, rgbToRgba(restored, pending.rgba)); // keeps the input's alpha
    $("restored").toBlob((blob) => {
      const link = $("download");
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(blob);
      link.hidden = false;
    }, "image/png");
    const replaced = mask.reduce((n, v) => n + (v !== 0), 0) / mask.length;
    demo.result.totalMs = performance.now() - total0;
    setStatus(
      `Restored ${pending.name} (${width}x${height}) in ${ms.toFixed(0)} ms ` +
        `(${demo.result.totalMs.toFixed(0)} ms with drawing); ${(100 * replaced).toFixed(1)}% of pixels replaced.`,
      "done",
    );
  } catch (e) {
    fail(e);
  }
}

/** Run the model again on the current image (for timing); resolves to the inference time in ms. */
async function rerun() {
  if (!session || !pending) throw new Error("load a model and an image first");
  return runOnce();
}

async function openFile(file) {
  if (/\.onnx$/i.test(file.name)) {
    await loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
    return;
  }
  try {
    pending = await decodeImage(file, file.name);
  } catch (e) {
    fail(new Error(`${file.name}: not an image this browser can decode`));
    return;
  }
  await restore();
}

$("model-file").addEventListener("change", (e) => e.target.files[0] && openFile(e.target.files[0]));
$("image-file").addEventListener("change", (e) => e.target.files[0] && openFile(e.target.files[0]));

const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", async (e) => {
  for (const file of e.dataTransfer.files) await openFile(file); // a model and an image may come together
});

// ?model=URL loads a model served beside the page.
const modelUrl = new URLSearchParams(location.search).get("model");
if (modelUrl) {
  fetch(modelUrl)
    .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`${modelUrl}: HTTP ${r.status}`))))
    .then((buf) => loadModel(new Uint8Array(buf), modelUrl.split("/").pop()))
    .catch(fail);
}
