import Kernels
import PluginAPI
import PluginSupport

// "sankshep.qat/1" for `static` and `int4`: the host fine-tunes the model with these methods'
// quantization simulated, then converts the trained weights into the same layers `create` makes.
//
//   static  weights per output channel to INT8 (Int8Linear's grid); the layer's input is one
//           per-tensor scale, which the host chooses while training and hands to `convert`
//           (SK_QAT_INPUT_PER_TENSOR, codes ±127 — what sk_quantize_rows_int8 does with a static scale).
//   int4    group-wise 4-bit weights (Int4Linear's grid, option `group_size`); inputs are quantized per
//           row at run time as dynamic INT8 does (SK_QAT_INPUT_PER_ROW, ±127), nothing to train.
//
// `fake_quantize` runs the same kernels `create` does (quantize, then the storage-layout dequantize
// that `dequantize` runs), so the float weight the host trains through is bit for bit what the
// converted layer holds. Both grids take their scale from the largest weight (per channel, per group),
// so no weight ever clips: the straight-through mask is all ones.

/// The QAT extension of `kind`, or nil for methods that have none (dynamic, fp16).
func qatExtension(for kind: QuantMethod) -> UnsafeRawPointer? {
    switch kind {
    case .static: UnsafeRawPointer(staticQATExtension)
    case .int4: UnsafeRawPointer(int4QATExtension)
    case .dynamic, .fp16: nil
    }
}

nonisolated(unsafe) let staticQATExtension = leak(sk_qat_ext(
    struct_size: UInt32(MemoryLayout<sk_qat_ext>.size), input_scheme: UInt32(SK_QAT_INPUT_PER_TENSOR), input_qmax: 127,
    fake_quantize: qatFakeQuantize, convert: qatConvert))

nonisolated(unsafe) let int4QATExtension = leak(sk_qat_ext(
    struct_size: UInt32(MemoryLayout<sk_qat_ext>.size), input_scheme: UInt32(SK_QAT_INPUT_PER_ROW), input_qmax: 127,
    fake_quantize: qatFakeQuantize, convert: qatConvert))

/// W (N, K) -> fake (N, K) = dequantize(quantize(W)) on the method's grid; pass (N, K) = 1.
private func qatFakeQuantize(_ method: UnsafePointer<sk_method>?, _ view: UnsafePointer<sk_weight_view>?,
                             _ options: UnsafePointer<sk_options>?, _ fake: UnsafeMutablePointer<Float>?,
                             _ pass: UnsafeMutablePointer<UInt8>?, _ error: UnsafeMutablePointer<sk_error>?) -> sk_status {
    reporting(error) {
        guard let kind = QuantMethod(method), let fake, let pass else { throw QuantFailure.invalid("fake_quantize without a method or outputs") }
        let weight = try CheckedWeight(view)
        let (N, K) = (weight.rows, weight.cols)
        switch kind {
        case .static:
            var Wq = [Int8](repeating: 0, count: N * K)
            var scales = [Float](repeating: 0, count: N)
            sk_quantize_weights_int8_per_channel(weight.data, Int32(N), Int32(K), &Wq, &scales)
            sk_dequantize_weights_int8(Wq, scales, Int32(N), Int32(K), fake)
        case .int4:
            let group = try int4GroupSize(options)
            try Int4Linear.checkShape(cols: K, group: group, layer: weight.name)
            var codes = [UInt8](repeating: 0, count: sk_int4_codes_bytes(Int32(N), Int32(K)))
            var groupScales = [Int8](repeating: 0, count: N * (K / group))
            var channelScales = [Float](repeating: 0, count: N)
            sk_quantize_weights_int4(weight.data, Int32(N), Int32(K), Int32(group), &codes, &groupScales, &channelScales)
            sk_dequantize_weights_int4(codes, groupScales, channelScales, Int32(N), Int32(K), Int32(group), fake)
        case .dynamic, .fp16:
            throw QuantFailure(SK_ERR_UNSUPPORTED, "\(kind.name) offers no quantization-aware training")
        }
        pass.update(repeating: 1, count: N * K)
    }
}

/// The trained weight (and bias) as the method's layer; `inputScale` is static's trained input scale.
private func qatConvert(_ method: UnsafePointer<sk_method>?, _ view: UnsafePointer<sk_weight_view>?, _ inputScale: Float,
                        _ options: UnsafePointer<sk_options>?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                        _ error: UnsafeMutablePointer<sk_error>?) -> sk_status {
    reporting(error) {
        guard let kind = QuantMethod(method) else { throw QuantFailure.invalid("convert without a method") }
        let weight = try CheckedWeight(view)
        let layer: QuantizedLinear
        switch kind {
        case .static:
            guard inputScale.isFinite, inputScale > 0 else {
                throw QuantFailure.invalid("\(weight.name): input scale \(inputScale) is not a positive finite number")
            }
            layer = Int8Linear(weight: weight, inputScale: inputScale)
        case .int4:
            layer = try Int4Linear(weight: weight, group: try int4GroupSize(options))
        case .dynamic, .fp16:
            throw QuantFailure(SK_ERR_UNSUPPORTED, "\(kind.name) offers no quantization-aware training")
        }
        try handOut(layer, to: out)
    }
}
