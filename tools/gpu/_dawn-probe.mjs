// What the raw-WebGPU probes (int8-probe.mjs, f16-probe.mjs) share: Dawn from the carried `webgpu`
// package (or WEBGPU_INDEX, to run one on lavapipe here), a device with the features the adapter
// has, and compile / buffer / read-back helpers. Every Dawn object the helpers make stays
// referenced: finalizers of dropped wrappers were a suspect of the probes' crashes. Those crashes
// (glibc mutex assertion, std::system_error, segfaults, or a silent exit) are intermittent and
// also happen on lavapipe: the same small script ran, crashed and ran again here.

/** Dawn's `create`, with its globals (GPUBufferUsage, …) installed. */
export async function loadDawn() {
  const url = process.env.WEBGPU_INDEX
    ? new URL(`file://${process.env.WEBGPU_INDEX}`)
    : new URL('../../.carry/gpu/node_modules/webgpu/index.js', import.meta.url);
  const { create, globals } = await import(url.href);
  Object.assign(globalThis, globals);
  return create;
}

/**
 * An adapter and device from a Dawn instance with `toggles` enabled (and `disabled` off), asking
 * for those of `features` the adapter has and its largest buffer and workgroup-memory limits.
 */
export async function openDevice(create, { toggles, disabled = [], features }) {
  const gpu = create([
    `enable-dawn-features=${toggles.join(',')}`,
    ...(disabled.length > 0 ? [`disable-dawn-features=${disabled.join(',')}`] : []),
  ]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const device = await adapter.requestDevice({
    requiredFeatures: features.filter((f) => adapter.features.has(f)),
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    },
  });
  return { adapter, device };
}

/** The adapter's subgroup-matrix configurations as `component->result MxNxK`. */
export function subgroupMatrixConfigs(adapter) {
  return [...(adapter.info.subgroupMatrixConfigs ?? [])].map(
    (c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`,
  );
}

/** compile(code) → { pipeline, messages }, buffer(size, usage, data?), readBack(src, bytes) → Uint8Array. */
export function probeHelpers(device) {
  const keep = [];
  async function compile(code) {
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code });
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    keep.push(module, pipeline);
    const error = await device.popErrorScope();
    if (!error) return { pipeline, messages: [] };
    const info = await module.getCompilationInfo();
    return {
      pipeline: undefined,
      messages: [...info.messages.map((m) => `${m.type}: ${m.message}`), `scope: ${error.message}`],
    };
  }
  function buffer(size, usage, data) {
    const b = device.createBuffer({
      size: Math.max(16, size),
      usage: usage | GPUBufferUsage.COPY_DST,
      mappedAtCreation: data !== undefined,
    });
    if (data !== undefined) {
      new Uint8Array(b.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, size));
      b.unmap();
    }
    keep.push(b);
    return b;
  }
  async function readBack(src, bytes) {
    const staging = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(src, 0, staging, 0, bytes);
    const commands = encoder.finish();
    device.queue.submit([commands]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = new Uint8Array(staging.getMappedRange().slice(0));
    staging.unmap();
    keep.push(staging, encoder, commands);
    return copy;
  }
  return { compile, buffer, readBack, keep };
}
