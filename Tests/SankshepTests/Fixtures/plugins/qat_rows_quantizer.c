/*
 * A third-party quantizer written against the header alone that offers quantization-aware training
 * ("sankshep.qat/1"): symmetric INT8 weights with one scale per output row, inputs left float
 * (SK_QAT_INPUT_FLOAT). The tests train a model for it and convert, as for the built-in static/int4.
 */
#include <math.h>
#include <stdlib.h>

#include "sankshep_plugin.h"

struct sk_quant_layer {
    int64_t rows, cols;
    float *weight;  /* (rows, cols): the quantized weight, reconstructed (q * scale) */
    float *bias;    /* (rows) or NULL */
};

static void destroy(sk_quant_layer *layer) {
    if (layer == NULL) return;
    free(layer->weight); free(layer->bias); free(layer);
}

/* fake (rows, cols) = round(W / s_r) * s_r, s_r = max|W[r, :]| / 127; nothing clips. */
static void quantize_rows(const sk_weight_view *w, float *fake, uint8_t *pass) {
    for (int64_t r = 0; r < w->rows; r++) {
        float max = 0;
        for (int64_t c = 0; c < w->cols; c++) max = fmaxf(max, fabsf(w->data[r * w->cols + c]));
        float scale = max > 0 ? max / 127.0f : 1.0f;
        for (int64_t c = 0; c < w->cols; c++) {
            fake[r * w->cols + c] = (float)lrintf(w->data[r * w->cols + c] / scale) * scale;
            if (pass) pass[r * w->cols + c] = 1;
        }
    }
}

static sk_status create(const sk_method *m, const sk_weight_view *w, const sk_activation_stats *s,
                        const sk_options *o, sk_quant_layer **out, sk_error *error) {
    (void)m; (void)s; (void)o;
    sk_quant_layer *layer = calloc(1, sizeof *layer);
    if (layer == NULL) return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "qat-rows: out of memory");
    layer->rows = w->rows; layer->cols = w->cols;
    layer->weight = malloc((size_t)(w->rows * w->cols) * sizeof(float));
    layer->bias = w->bias ? malloc((size_t)w->rows * sizeof(float)) : NULL;
    if (!layer->weight || (w->bias && !layer->bias)) { destroy(layer); return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "qat-rows: out of memory"); }
    quantize_rows(w, layer->weight, NULL);
    if (w->bias) memcpy(layer->bias, w->bias, (size_t)w->rows * sizeof(float));
    *out = layer;
    return SK_OK;
}

static sk_status forward(sk_quant_layer *layer, const float *x, int64_t tokens, float *y, sk_error *error) {
    (void)error;
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t r = 0; r < layer->rows; r++) {
            float sum = layer->bias ? layer->bias[r] : 0.0f;
            for (int64_t c = 0; c < layer->cols; c++) sum += x[t * layer->cols + c] * layer->weight[r * layer->cols + c];
            y[t * layer->rows + r] = sum;
        }
    return SK_OK;
}

static uint64_t saved_bytes(const sk_quant_layer *layer) { return (uint64_t)(layer->rows * layer->cols) * sizeof(float); }

static sk_status serialize(const sk_quant_layer *layer, sk_blob_writer *writer, sk_error *error) {
    sk_status status = writer->write(writer, "weight", layer->weight, (uint64_t)(layer->rows * layer->cols) * sizeof(float), error);
    if (status == SK_OK && layer->bias) status = writer->write(writer, "bias", layer->bias, (uint64_t)layer->rows * sizeof(float), error);
    return status;
}

static sk_status deserialize(const sk_method *m, const char *format_version, int64_t rows, int64_t cols,
                             sk_blob_reader *reader, const sk_options *o, sk_quant_layer **out, sk_error *error) {
    (void)m; (void)o; (void)format_version;
    const void *weight, *bias;
    uint64_t weight_bytes, bias_bytes;
    sk_status status = reader->read(reader, "weight", &weight, &weight_bytes, error);
    if (status != SK_OK) return status;
    int with_bias = reader->read(reader, "bias", &bias, &bias_bytes, error) == SK_OK;
    error->message[0] = '\0';
    if (weight_bytes != (uint64_t)(rows * cols) * sizeof(float)) return sk_error_set(error, SK_ERR_BAD_DATA, "qat-rows: wrong weight size");
    sk_quant_layer *layer = calloc(1, sizeof *layer);
    if (layer == NULL) return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "qat-rows: out of memory");
    layer->rows = rows; layer->cols = cols;
    layer->weight = malloc((size_t)weight_bytes);
    layer->bias = with_bias ? malloc((size_t)bias_bytes) : NULL;
    if (!layer->weight || (with_bias && !layer->bias)) { destroy(layer); return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "qat-rows: out of memory"); }
    memcpy(layer->weight, weight, (size_t)weight_bytes);
    if (with_bias) memcpy(layer->bias, bias, (size_t)bias_bytes);
    *out = layer;
    return SK_OK;
}

static sk_status dequantize(const sk_quant_layer *layer, float *weight, sk_error *error) {
    (void)error;
    memcpy(weight, layer->weight, (size_t)(layer->rows * layer->cols) * sizeof(float));
    return SK_OK;
}

static sk_status fake_quantize(const sk_method *m, const sk_weight_view *w, const sk_options *o, float *fake,
                               uint8_t *pass, sk_error *error) {
    (void)m; (void)o; (void)error;
    quantize_rows(w, fake, pass);
    return SK_OK;
}

static sk_status convert(const sk_method *m, const sk_weight_view *w, float input_scale, const sk_options *o,
                         sk_quant_layer **out, sk_error *error) {
    (void)input_scale;
    return create(m, w, NULL, o, out, error);
}

static const sk_quantizer quantizer = {
    .struct_size = sizeof(sk_quantizer), .format_version = "1", .create = create, .forward = forward,
    .saved_bytes = saved_bytes, .serialize = serialize, .deserialize = deserialize, .destroy = destroy,
    .dequantize = dequantize,
};

static const sk_qat_ext qat = {
    .struct_size = sizeof(sk_qat_ext), .input_scheme = SK_QAT_INPUT_FLOAT, .input_qmax = 0,
    .fake_quantize = fake_quantize, .convert = convert,
};

static const void *get_extension(const sk_method *m, const char *id) {
    (void)m;
    return strcmp(id, SK_EXT_QAT) == 0 ? &qat : NULL;
}

static const sk_method method = {
    .struct_size = sizeof(sk_method), .kind = SK_METHOD_QUANTIZER, .name = "qat-rows", .version = "0.1",
    .description = "INT8 weights per output row, float inputs, trainable with qat (test plugin)",
    .quantizer = &quantizer, .get_extension = get_extension,
};

static uint32_t count(void) { return 1; }
static const sk_method *at(uint32_t i) { return i == 0 ? &method : NULL; }

static const sk_plugin_entry entry = {
    .struct_size = sizeof(sk_plugin_entry), .abi_version = SANKSHEP_PLUGIN_ABI_VERSION,
    .name = "test-qat-rows", .version = "0.1", .method_count = count, .method_at = at,
};

SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t v) { (void)v; return &entry; }
