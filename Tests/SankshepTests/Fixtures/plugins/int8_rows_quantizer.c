/*
 * A minimal quantizer plugin used by the tests to exercise the quantizer half of the ABI: symmetric
 * INT8 weights with one scale per output row, computed in plain C (no SIMD). The real quantizers
 * live in Sources/Plugins/Quant.
 */
#include <math.h>
#include <stdlib.h>

#include "sankshep_plugin.h"

struct sk_quant_layer {
    int64_t rows, cols;
    int8_t *q;      /* (rows, cols) */
    float *scales;  /* (rows) */
    float *bias;    /* (rows) or NULL */
};

static void destroy(sk_quant_layer *layer) {
    if (layer == NULL) return;
    free(layer->q); free(layer->scales); free(layer->bias); free(layer);
}

static sk_quant_layer *allocate(int64_t rows, int64_t cols, int with_bias) {
    sk_quant_layer *layer = calloc(1, sizeof *layer);
    if (layer == NULL) return NULL;
    layer->rows = rows; layer->cols = cols;
    layer->q = malloc((size_t)(rows * cols));
    layer->scales = malloc((size_t)rows * sizeof(float));
    layer->bias = with_bias ? malloc((size_t)rows * sizeof(float)) : NULL;
    if (!layer->q || !layer->scales || (with_bias && !layer->bias)) { destroy(layer); return NULL; }
    return layer;
}

static sk_status create(const sk_method *m, const sk_weight_view *w, const sk_activation_stats *s,
                        const sk_options *o, sk_quant_layer **out, sk_error *error) {
    (void)m; (void)s; (void)o;
    sk_quant_layer *layer = allocate(w->rows, w->cols, w->bias != NULL);
    if (layer == NULL) return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "int8-rows: out of memory");
    for (int64_t r = 0; r < w->rows; r++) {
        float max = 0;
        for (int64_t c = 0; c < w->cols; c++) max = fmaxf(max, fabsf(w->data[r * w->cols + c]));
        float scale = max > 0 ? max / 127.0f : 1.0f;
        layer->scales[r] = scale;
        for (int64_t c = 0; c < w->cols; c++)
            layer->q[r * w->cols + c] = (int8_t)lrintf(w->data[r * w->cols + c] / scale);
        if (w->bias) layer->bias[r] = w->bias[r];
    }
    *out = layer;
    return SK_OK;
}

static sk_status forward(sk_quant_layer *layer, const float *x, int64_t tokens, float *y, sk_error *error) {
    (void)error;
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t r = 0; r < layer->rows; r++) {
            float sum = 0;
            for (int64_t c = 0; c < layer->cols; c++) sum += x[t * layer->cols + c] * (float)layer->q[r * layer->cols + c];
            y[t * layer->rows + r] = sum * layer->scales[r] + (layer->bias ? layer->bias[r] : 0.0f);
        }
    return SK_OK;
}

static uint64_t saved_bytes(const sk_quant_layer *layer) {
    return (uint64_t)(layer->rows * layer->cols) + (uint64_t)layer->rows * sizeof(float) * (layer->bias ? 2 : 1);
}

static sk_status serialize(const sk_quant_layer *layer, sk_blob_writer *writer, sk_error *error) {
    sk_status status = writer->write(writer, "qweight", layer->q, (uint64_t)(layer->rows * layer->cols), error);
    if (status == SK_OK) status = writer->write(writer, "scales", layer->scales, (uint64_t)layer->rows * sizeof(float), error);
    if (status == SK_OK && layer->bias) status = writer->write(writer, "bias", layer->bias, (uint64_t)layer->rows * sizeof(float), error);
    return status;
}

static sk_status deserialize(const sk_method *m, const char *format_version, int64_t rows, int64_t cols,
                             sk_blob_reader *reader, const sk_options *o, sk_quant_layer **out, sk_error *error) {
    (void)m; (void)o;
    if (strcmp(format_version, "1") != 0)
        return sk_error_set(error, SK_ERR_BAD_DATA, "int8-rows: cannot read format version other than 1");
    const void *q, *scales, *bias;
    uint64_t q_bytes, scale_bytes, bias_bytes;
    sk_status status = reader->read(reader, "qweight", &q, &q_bytes, error);
    if (status != SK_OK) return status;
    if ((status = reader->read(reader, "scales", &scales, &scale_bytes, error)) != SK_OK) return status;
    int with_bias = reader->read(reader, "bias", &bias, &bias_bytes, error) == SK_OK;
    error->message[0] = '\0'; /* the bias is optional: forget the failed read's message */
    if (q_bytes != (uint64_t)(rows * cols) || scale_bytes != (uint64_t)rows * sizeof(float) ||
        (with_bias && bias_bytes != (uint64_t)rows * sizeof(float)))
        return sk_error_set(error, SK_ERR_BAD_DATA, "int8-rows: blob sizes do not fit the layer shape");
    sk_quant_layer *layer = allocate(rows, cols, with_bias);
    if (layer == NULL) return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "int8-rows: out of memory");
    memcpy(layer->q, q, q_bytes);
    memcpy(layer->scales, scales, scale_bytes);
    if (with_bias) memcpy(layer->bias, bias, bias_bytes);
    *out = layer;
    return SK_OK;
}

static const sk_quantizer quantizer = {
    .struct_size = sizeof(sk_quantizer), .format_version = "1", .create = create, .forward = forward,
    .saved_bytes = saved_bytes, .serialize = serialize, .deserialize = deserialize, .destroy = destroy,
};

static const sk_method method = {
    .struct_size = sizeof(sk_method), .kind = SK_METHOD_QUANTIZER, .name = "int8-rows", .version = "0.1",
    .description = "symmetric INT8 weights, one scale per output row (test plugin)", .quantizer = &quantizer,
};

static uint32_t count(void) { return 1; }
static const sk_method *at(uint32_t i) { return i == 0 ? &method : NULL; }

static const sk_plugin_entry entry = {
    .struct_size = sizeof(sk_plugin_entry), .abi_version = SANKSHEP_PLUGIN_ABI_VERSION,
    .name = "test-int8-rows", .version = "0.1", .method_count = count, .method_at = at,
};

SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t v) { (void)v; return &entry; }
