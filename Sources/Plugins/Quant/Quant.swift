import Kernels
import PluginAPI
import PluginSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The Quant plugin: four quantizer methods for the linear layers of an encoder, all on the CPU.
//
//   dynamic  INT8 weights per output channel, activations quantized per row at run time (Int8Linear)
//   static   INT8 weights as dynamic, one activation scale per layer calibrated beforehand (Int8Linear
//            + StaticCalibration)
//   int4     group-wise 4-bit weights, `group_size` 32, 64 or 128 (Int4Linear)
//   fp16     half-precision weights converted in the kernel (FP16Linear)
//
// Every method shares one quantizer table; the method's `plugin_data` says which one was called.
// A layer object is a Swift class instance handed to the host as an opaque retained pointer, and
// released by `destroy`. The host never calls one layer from two threads at once (the ABI's rule),
// which is what lets each layer keep its own scratch buffers for forward.

@_cdecl("sankshep_plugin_entry")
public func sankshepPluginEntry(_ hostABIVersion: UInt32) -> UnsafePointer<sk_plugin_entry>? { entry }

nonisolated(unsafe) let entry: UnsafePointer<sk_plugin_entry> = {
    // The kernels' thread pool is sized when the host initialises the plugin.
    onInit = configureKernelThreads
    return makeEntry(name: "sankshep-quant", version: "1.0.0", methods: QuantMethod.allCases.map(\.descriptor))
}()

/// The tag saved beside every layer; `deserialize` reads only this one.
let formatVersion = "1"

enum QuantMethod: UInt8, CaseIterable {
    case dynamic = 1, `static`, int4, fp16

    var name: String {
        switch self {
        case .dynamic: "dynamic"
        case .static: "static"
        case .int4: "int4"
        case .fp16: "fp16"
        }
    }

    var summary: String {
        switch self {
        case .dynamic: "INT8 weights per output channel, activations quantized per row at run time, int32 sums"
        case .static: "INT8 weights per output channel, one activation scale per layer calibrated on calibration batches"
        case .int4: "4-bit weights in groups along the input, each group with its own scale, int8 activations"
        case .fp16: "half-precision weights converted to float inside the product (F16C)"
        }
    }

    var options: [UnsafePointer<sk_option_spec>?] {
        switch self {
        case .dynamic, .fp16: []
        case .static: [
            optionSpec("observer", type: SK_OPTION_ENUM, default: "minmax",
                       help: "how the activation range is chosen: largest |x|, a percentile of |x|, or least squared error",
                       choices: Observer.allCases.map(\.rawValue)),
            optionSpec("percentile", type: SK_OPTION_FLOAT, default: "99.99",
                       help: "observer=percentile: the percentile of |x| that maps to 127, in (0, 100]"),
        ]
        case .int4: [
            optionSpec("group_size", type: SK_OPTION_ENUM, default: "32",
                       help: "consecutive inputs sharing one scale: smaller groups are more accurate, larger ones smaller",
                       choices: Int4Linear.groupSizes.map(String.init)),
        ]
        }
    }

    var descriptor: UnsafePointer<sk_method> { descriptors[Int(rawValue) - 1] }

    fileprivate func makeDescriptor() -> UnsafePointer<sk_method> {
        let options = self.options
        return leak(sk_method(
            struct_size: UInt32(MemoryLayout<sk_method>.size), kind: UInt32(SK_METHOD_QUANTIZER),
            name: cString(name), version: cString("1.0.0"), description: cString(summary),
            option_count: UInt32(options.count), options: options.isEmpty ? nil : leakArray(options),
            pruner: nil, schedule: nil, quantizer: quantizerTable,
            get_extension: { method, id in
                guard let id else { return nil }
                switch String(cString: id) {
                case SK_EXT_BLOB_TYPES: return UnsafeRawPointer(blobTypesExtension)
                case SK_EXT_CALIBRATION where QuantMethod(method) == .static: return UnsafeRawPointer(staticCalibrationExtension)
                default: return nil
                }
            },
            plugin_data: UnsafeRawPointer(leak(rawValue))))
    }

    init?(_ method: UnsafePointer<sk_method>?) {
        guard let data = method?.pointee.plugin_data else { return nil }
        self.init(rawValue: data.load(as: UInt8.self))
    }
}

nonisolated(unsafe) let descriptors = QuantMethod.allCases.map { $0.makeDescriptor() }

/// `static` asks the host for the abs-max of every input feature (minmax) and a sample of input
/// rows (percentile, mse) of each layer it quantizes.
nonisolated(unsafe) let staticCalibrationExtension = leak(sk_calibration_ext(
    struct_size: UInt32(MemoryLayout<sk_calibration_ext>.size),
    needs: UInt32(SK_STAT_INPUT_ABS_MAX | SK_STAT_INPUT_SAMPLES), max_sample_rows: calibrationSampleRows))

/// The element type of every blob the layers write (Int8Linear, Int4Linear, FP16Linear), for the
/// host's typed storage of them.
nonisolated(unsafe) let blobTypesExtension = leak(sk_blob_types_ext(
    struct_size: UInt32(MemoryLayout<sk_blob_types_ext>.size),
    blob_type: { _, name in
        switch name.map({ String(cString: $0) }) {
        case "weight.int8", "weight.group_scale": UInt32(SK_BLOB_I8)
        case "weight.f16": UInt32(SK_BLOB_F16)
        case "weight.scale", "input.scale", "bias": UInt32(SK_BLOB_F32)
        default: UInt32(SK_BLOB_U8)  // weight.q4: two 4-bit codes per byte
        }
    }))

/// The library carries its own copy of the kernels. With a host that offers `parallel_for` (added within ABI 1)
/// their loops run on the host's threads, under the host's `--threads`: one pool on the machine, not
/// two spinning against each other. An older host gets the library's own pool, sized by
/// SANKSHEP_THREADS when set and otherwise by the online cores (also the host's default for
/// `--threads`). OpenBLAS is shared with the host, so its thread count is left alone.
func configureKernelThreads() {
    if let host, hostOffersParallelFor(host) {
        sk_parallel_set_backend({ backend, n, body, context in
            let table = backend!.assumingMemoryBound(to: sk_host.self)
            table.pointee.parallel_for(table, n, body, context)
        }, UnsafeRawPointer(host))
        return
    }
    sk_parallel_set_backend(nil, nil)
    var threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    if let text = getenv("SANKSHEP_THREADS").map({ String(cString: $0) }), let value = Int(text), value > 0 {
        threads = value
    }
    sk_quant_set_threads(Int32(max(1, min(threads, 64))))
}

/// SK_HAS_FIELD(host, sk_host, thread_count) and both services added within ABI 1 filled in. The size is read on its
/// own first: an older host's table ends before these fields, so nothing past it may be touched.
private func hostOffersParallelFor(_ host: UnsafePointer<sk_host>) -> Bool {
    let raw = UnsafeRawPointer(host)
    guard let end = MemoryLayout<sk_host>.offset(of: \sk_host.thread_count),
          Int(raw.load(as: UInt32.self)) >= end + MemoryLayout<UnsafeRawPointer>.size else { return false }
    return host.pointee.parallel_for != nil && host.pointee.thread_count != nil
}

// ---------------------------------------------------------------- the quantizer table

private func layerObject(_ layer: OpaquePointer?) -> QuantizedLinear? {
    guard let layer else { return nil }
    return Unmanaged<QuantizedLinear>.fromOpaque(UnsafeRawPointer(layer)).takeUnretainedValue()
}

private func handOut(_ layer: QuantizedLinear, to out: UnsafeMutablePointer<OpaquePointer?>?) throws {
    guard let out else { throw QuantFailure.invalid("no place given for the new layer") }
    out.pointee = OpaquePointer(Unmanaged.passRetained(layer).toOpaque())
}

nonisolated(unsafe) let quantizerTable = leak(sk_quantizer(
    struct_size: UInt32(MemoryLayout<sk_quantizer>.size),
    format_version: cString(formatVersion),
    create: { method, view, stats, options, out, error in
        reporting(error) {
            guard let kind = QuantMethod(method) else { throw QuantFailure.invalid("unknown method descriptor") }
            let weight = try CheckedWeight(view)
            let layer: QuantizedLinear
            switch kind {
            case .dynamic:
                layer = Int8Linear(weight: weight, inputScale: nil)
            case .static:
                let observerName = option(options, "observer") ?? "minmax"
                guard let observer = Observer(rawValue: observerName) else {
                    throw QuantFailure.invalid("option observer: '\(observerName)' is not one of minmax, percentile, mse")
                }
                let percentileText = option(options, "percentile") ?? "99.99"
                guard let percentile = Double(percentileText), percentile > 0, percentile <= 100 else {
                    throw QuantFailure.invalid("option percentile: '\(percentileText)' is not a number in (0, 100]")
                }
                let scale = try staticInputScale(observer: observer, percentile: percentile, stats: stats,
                                                 features: weight.cols, layer: weight.name)
                layer = Int8Linear(weight: weight, inputScale: scale)
            case .int4:
                let text = option(options, "group_size") ?? "32"
                guard let group = Int(text), Int4Linear.groupSizes.contains(group) else {
                    throw QuantFailure.invalid("option group_size: '\(text)' is not one of 32, 64, 128")
                }
                layer = try Int4Linear(weight: weight, group: group)
            case .fp16:
                layer = try FP16Linear(weight: weight)
            }
            try handOut(layer, to: out)
        }
    },
    forward: { layer, x, tokens, y, error in
        reporting(error) {
            guard let object = layerObject(layer), let x, let y else { throw QuantFailure.invalid("forward without a layer, input or output") }
            guard tokens >= 0, tokens <= Int64(Int32.max) / Int64(max(object.cols, object.rows)) else {
                throw QuantFailure.invalid("\(object.name): cannot run a batch of \(tokens) tokens")
            }
            if tokens > 0 { try object.forward(x, tokens: Int(tokens), y) }
        }
    },
    saved_bytes: { layer in UInt64(layerObject(layer)?.savedBytes ?? 0) },
    serialize: { layer, writer, error in
        reporting(error) {
            guard let object = layerObject(layer), let writer else { throw QuantFailure.invalid("serialize without a layer or writer") }
            try object.serialize(to: BlobSink(writer: writer, error: error))
        }
    },
    deserialize: { method, tag, rows, cols, reader, _, out, error in
        reporting(error) {
            guard let kind = QuantMethod(method), let reader else { throw QuantFailure.invalid("deserialize without a method or reader") }
            let label = "\(kind.name) layer (\(rows) x \(cols))"
            let version = tag.map { String(cString: $0) } ?? ""
            guard version == formatVersion else {
                throw QuantFailure.badData("\(label): saved in format version '\(version)', this plugin reads version \(formatVersion)")
            }
            let shape = try checkedShape(rows, cols, layer: label)
            let blobs = BlobSource(reader: reader, error: error, layer: label)
            let layer: QuantizedLinear = switch kind {
            case .dynamic: try Int8Linear(blobs: blobs, rows: shape.rows, cols: shape.cols, isStatic: false)
            case .static: try Int8Linear(blobs: blobs, rows: shape.rows, cols: shape.cols, isStatic: true)
            case .int4: try Int4Linear(blobs: blobs, rows: shape.rows, cols: shape.cols)
            case .fp16: try FP16Linear(blobs: blobs, rows: shape.rows, cols: shape.cols)
            }
            try handOut(layer, to: out)
        }
    },
    destroy: { layer in
        guard let layer else { return }
        Unmanaged<QuantizedLinear>.fromOpaque(UnsafeRawPointer(layer)).release()
    },
    dequantize: { layer, weight, error in
        reporting(error) {
            guard let object = layerObject(layer), let weight else { throw QuantFailure.invalid("dequantize without a layer or output") }
            object.dequantize(into: weight)
        }
    }))
