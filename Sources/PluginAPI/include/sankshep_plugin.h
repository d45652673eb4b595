/*
 * sankshep_plugin.h -- the Sankshep plugin ABI, version 1.
 *
 * This header is the whole contract between the `sankshep` host and a compression plugin. A plugin
 * is a shared library (`lib<name>.so` on Linux, `lib<name>.dylib` on macOS) that exports ONE symbol,
 * `sankshep_plugin_entry`; everything else is reached through the table that symbol returns. A
 * plugin may be written in C, C++, Swift, Rust or Zig: it needs this header and nothing else.
 *
 * The comments are the specification. docs/plugin-abi.md explains the design choices.
 *
 * ------------------------------------------------------------------------------------------------
 * Versioning
 *   - SANKSHEP_PLUGIN_ABI_VERSION is bumped only for incompatible changes. The host passes the
 *     version it speaks to `sankshep_plugin_entry`; the plugin returns an entry whose `abi_version`
 *     says what it speaks. A host refuses any version it cannot speak, naming both versions.
 *   - Every struct that crosses the boundary begins with `uint32_t struct_size`, set to
 *     `sizeof(struct)` by whoever fills it in. Within one ABI version structs and function tables
 *     ONLY GROW AT THE END. A reader checks `SK_HAS_FIELD(p, type, field)` before reading a field
 *     added after v1.0, so an older plugin works with a newer host and the other way round.
 *     "v1.0" is the first layout of ABI 1; fields added since are marked "added in ABI 1, after
 *     the fields above" (the version number stays 1: they change nothing for older readers). The
 *     host refuses a struct smaller than its v1.0 layout, copies the tables it reads into its own
 *     full-size structs, and reads every field past the plugin's `struct_size` as 0 / NULL. v1.0
 *     ends at: sk_plugin_entry.method_at, sk_method.plugin_data, sk_pruner.prune_structured,
 *     sk_schedule.criterion, sk_quantizer.destroy, sk_option_spec.choices.
 *   - Optional features are reached by string id through `sk_method.get_extension`
 *     (e.g. "sankshep.calibration/1"); an unknown id yields NULL. A new feature is a new id; a
 *     changed feature is a new id suffix ("/2").
 *
 * Ownership and lifetimes
 *   - Everything a plugin hands out through its entry (strings, descriptors, option schemas,
 *     function tables, extension structs) is plugin-owned, immutable and lives until the library
 *     is unloaded. The host never frees or writes it. (The host does not unload plugin libraries
 *     before process exit, so "until unloaded" in practice means "for ever".)
 *   - Everything the host passes into a call (weight views, statistics, options, output buffers,
 *     error buffers) is host-owned and valid only until that call returns. A plugin that needs it
 *     later copies it.
 *   - Quantized layers (`sk_quant_layer`) are plugin-owned objects: created by `create` or
 *     `deserialize`, released by `destroy`, which the host calls exactly once per object.
 *   - Scratch memory from `sk_host.alloc` is released with `sk_host.free`, by the plugin.
 *
 * Threads
 *   - `init` and `deinit` are called once each, from one thread, with no other call in flight.
 *     The host calls `deinit` at process exit (an `atexit` handler), since it never unloads.
 *   - Every other function may be called from any thread, and concurrently for DIFFERENT weights
 *     or layer objects: plugins keep no mutable global state (or protect it themselves). The host
 *     never calls into the same `sk_quant_layer` from two threads at once.
 *   - Host services (`sk_host`) may be called from any thread, including threads the plugin made.
 *
 * Errors
 *   - Every function that can fail returns an `sk_status` (SK_OK == 0) and takes a last argument
 *     `sk_error *error`: a host-owned buffer. On failure the plugin writes ONE line (no '\n'),
 *     NUL-terminated, truncated to `error->capacity` bytes -- `sk_error_set` does exactly that --
 *     saying what is wrong, naming the layer or option. The host prefixes the method and file.
 *   - A plugin never aborts, exits, raises signals or throws exceptions across the boundary; every
 *     failure, including out-of-memory, becomes a status.
 *   - On failure, output buffers may hold partial results; the host discards them.
 * ------------------------------------------------------------------------------------------------
 */
#ifndef SANKSHEP_PLUGIN_H
#define SANKSHEP_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define SANKSHEP_PLUGIN_ABI_VERSION 1

/* The one symbol every plugin library exports. */
#define SANKSHEP_PLUGIN_ENTRY_SYMBOL "sankshep_plugin_entry"

#if defined(_WIN32)
#define SK_EXPORT __declspec(dllexport)
#else
#define SK_EXPORT __attribute__((visibility("default")))
#endif

/* True when the struct at `p`, as filled in by the other side, is large enough to hold `field`. */
#define SK_HAS_FIELD(p, type, field) \
    ((p)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- status codes ---------------------------------------------------------------------------- */

typedef int32_t sk_status;
#define SK_OK                    0
#define SK_ERR_INVALID_ARGUMENT  1  /* a value the method cannot work with (bad option, shape, NaN) */
#define SK_ERR_UNSUPPORTED       2  /* the method does not do this (e.g. structured mode) */
#define SK_ERR_OUT_OF_MEMORY     3
#define SK_ERR_BAD_DATA          4  /* deserialize: blobs missing, wrong size or wrong format */
#define SK_ERR_INTERNAL          5  /* anything else: a bug in the plugin */

/* Error out-parameter: a buffer owned by the host, valid for the duration of the call. */
typedef struct sk_error {
    uint32_t struct_size;
    uint32_t capacity;  /* bytes available at `message`, including the terminating NUL; >= 1 */
    char *message;      /* host-owned; starts as "" */
} sk_error;

/* Writes `message` into `error` (truncating), so a plugin can `return sk_error_set(e, SK_ERR_..., "...")`. */
static inline sk_status sk_error_set(sk_error *error, sk_status status, const char *message) {
    if (error != NULL && error->message != NULL && error->capacity > 0) {
        size_t n = strlen(message);
        if (n > error->capacity - 1) n = error->capacity - 1;
        memcpy(error->message, message, n);
        error->message[n] = '\0';
    }
    return status;
}

/* ---- host services --------------------------------------------------------------------------- */

#define SK_LOG_DEBUG   0
#define SK_LOG_INFO    1
#define SK_LOG_WARNING 2
#define SK_LOG_ERROR   3

struct sk_activation_stats;

/* Services the host hands to `init`. Host-owned; valid from `init` until `deinit` returns; every
 * function may be called from any thread. Pass the table itself as the first argument. */
typedef struct sk_host {
    uint32_t struct_size;
    uint32_t abi_version;   /* the host's SANKSHEP_PLUGIN_ABI_VERSION */
    const char *host_version;  /* e.g. "0.1.0" */
    void *host_data;           /* the host's own; plugins never read or write it */

    /* One line of text (no trailing newline) into the host's log, tagged with the plugin's name. */
    void (*log)(const struct sk_host *host, int32_t level, const char *message);

    /* Progress of a long job (`done` of `total` units; `task` names it, e.g. a layer). Cheap to call. */
    void (*progress)(const struct sk_host *host, const char *task, int64_t done, int64_t total);

    /* Scratch memory aligned to `alignment` (a power of two, at most 4096). Returns NULL when out of
     * memory. Release with `free` (NULL is allowed). Contents are uninitialised. */
    void *(*alloc)(const struct sk_host *host, size_t bytes, size_t alignment);
    void (*free)(const struct sk_host *host, void *pointer);

    /* Statistics of the input of the linear layer `layer_name`, gathered by running the host's
     * calibration batches through the model (what is gathered is what the method's
     * "sankshep.calibration/1" extension asks for). On success `*stats` is host-owned and valid
     * until the current call into the plugin returns. MAY BE NULL: a host that has no model or no
     * calibration data (e.g. while listing plugins) leaves it out. The sankshep host always leaves it
     * NULL: it passes the statistics a method asked for with each call (`stats` arguments). */
    sk_status (*calibration_stats)(const struct sk_host *host, const char *layer_name,
                                   const struct sk_activation_stats **stats, sk_error *error);

    /* ---- added in ABI 1, after the fields above: check SK_HAS_FIELD(host, sk_host, thread_count) */

    /* Runs `body(context, begin, end)` over [0, n) cut into contiguous, nearly equal ranges, one per
     * thread of the host's pool (the calling thread takes one), and returns when all are done. A
     * plugin's parallel loops (e.g. a quantized product split over output channels) go through it, so
     * the host and its plugins share one set of threads and the host's `--threads` setting instead of
     * each spinning a pool of its own on the same cores. Ranges may run concurrently: `body` writes
     * only what its range owns. A nested call (from inside `body`) runs [0, n) on the calling thread.
     * `context` is only borrowed for the duration of the call. MAY BE NULL (then loop alone). */
    void (*parallel_for)(const struct sk_host *host, int32_t n,
                         void (*body)(void *context, int32_t begin, int32_t end), void *context);

    /* The number of threads `parallel_for` uses (>= 1). NULL exactly when parallel_for is. */
    int32_t (*thread_count)(const struct sk_host *host);
} sk_host;

/* ---- option schema --------------------------------------------------------------------------- */

#define SK_OPTION_INT    1  /* decimal integer, e.g. "42", "-3" */
#define SK_OPTION_FLOAT  2  /* decimal number, e.g. "0.5", "1e-3" */
#define SK_OPTION_STRING 3  /* any text */
#define SK_OPTION_BOOL   4  /* "true" or "false" */
#define SK_OPTION_ENUM   5  /* one of `choices` */

/* One option a method declares; the CLI shows it and validates values against it. */
typedef struct sk_option_spec {
    uint32_t struct_size;
    uint32_t type;               /* SK_OPTION_* */
    const char *name;            /* lower-case, [a-z0-9_], unique within the method */
    const char *default_value;   /* text form, valid for `type`; never NULL */
    const char *help;            /* one line */
    const char *const *choices;  /* SK_OPTION_ENUM: NULL-terminated list; otherwise NULL */

    /* ---- added in ABI 1, after the fields above (an older spec reads as unbounded) */

    /* SK_OPTION_INT / SK_OPTION_FLOAT only: inclusive bounds in text form ("0", "1e-3"), or NULL
     * for none. The host refuses a value outside them when it validates the recipe, before any
     * stage runs, naming the option and the bound; on another type a bound refuses the plugin. */
    const char *min_value;
    const char *max_value;
} sk_option_spec;

/* Option values for one call. The host has validated them against the method's schema and filled
 * in the default of every option not given, so EVERY declared option is present exactly once, in
 * text form, and nothing undeclared is. Host-owned, valid during the call. */
typedef struct sk_option_value {
    const char *name;
    const char *value;
} sk_option_value;

typedef struct sk_options {
    uint32_t struct_size;
    uint32_t count;
    const sk_option_value *values;  /* `count` entries */
} sk_options;

/* The value of option `name`, or NULL if absent. */
static inline const char *sk_options_get(const sk_options *options, const char *name) {
    if (options == NULL) return NULL;
    for (uint32_t i = 0; i < options->count; i++)
        if (strcmp(options->values[i].name, name) == 0) return options->values[i].value;
    return NULL;
}

/* ---- what the host hands to methods ---------------------------------------------------------- */

#define SK_LAYER_OTHER     0
#define SK_LAYER_ATTENTION 1  /* query / key / value / attention output projections */
#define SK_LAYER_FFN       2  /* intermediate and output dense layers of the feed-forward block */
#define SK_LAYER_EMBEDDING 3  /* the word-embedding table, handed over as the linear layer it is: a lookup
                               * E[token] (E: vocab x hidden) is E^T applied to a one-hot token, so the view
                               * is E^T, rows = hidden, cols = vocab (one input feature per token), and its
                               * statistics count tokens: ||X_j||_2 = sqrt(occurrences of token j in the
                               * training comments -- all of them, counting needs no forward), abs-max 1 for
                               * a seen token, 0 otherwise, range [0, 1].
                               * A method that treats every SK_LAYER_* alike needs nothing more. Added in
                               * ABI 1 without a version change: a method must read unknown kinds as OTHER.
                               * PRUNERS ONLY: a quantizer receives an embedding table as stored, rows =
                               * vocab (or positions), cols = hidden, with kind SK_LAYER_OTHER and no stats. */

/* A linear layer's weight, row-major (rows, cols) as PyTorch stores `nn.Linear.weight`:
 * rows = output features, cols = input features; y = x W^T + b. Host-owned, read-only, valid during
 * the call. */
typedef struct sk_weight_view {
    uint32_t struct_size;
    uint32_t layer_kind;        /* SK_LAYER_*; read a kind you do not know as SK_LAYER_OTHER (kinds may be added) */
    const char *layer_name;     /* Hugging Face parameter name, e.g. "bert.encoder.layer.0.output.dense.weight" */
    const float *data;          /* (rows, cols), contiguous */
    int64_t rows;
    int64_t cols;
    const float *bias;          /* (rows) or NULL; pruners ignore it. The sankshep host passes NULL to
                                 * quantizers and adds each bias itself after `forward`. */
} sk_weight_view;

/* Bits of `sk_calibration_ext.needs` and of `sk_activation_stats.present`. */
#define SK_STAT_INPUT_L2_NORM  (1u << 0)  /* per input feature j: ||X_j||_2 over all calibration tokens */
#define SK_STAT_INPUT_ABS_MAX  (1u << 1)  /* per input feature j: max |X_ij| */
#define SK_STAT_INPUT_RANGE    (1u << 2)  /* whole input: min and max */
#define SK_STAT_INPUT_SAMPLES  (1u << 3)  /* a sample of input rows (tokens), for percentile/MSE choices;
                                            * quantizers only: a pruner asking for it is refused at load */

/* Statistics of a linear layer's INPUT activations X (tokens, cols) on calibration data. Host-owned,
 * read-only, valid during the call. Pointers of statistics not in `present` are NULL. */
typedef struct sk_activation_stats {
    uint32_t struct_size;
    uint32_t present;           /* SK_STAT_* bits */
    int64_t features;           /* == the weight's cols */
    int64_t tokens;             /* calibration tokens (rows of X) that went into the statistics */
    const float *input_l2_norm; /* (features) */
    const float *input_abs_max; /* (features) */
    float input_min, input_max;
    const float *samples;       /* (sample_rows, features), row-major */
    int64_t sample_rows;
} sk_activation_stats;

/* ---- pruners --------------------------------------------------------------------------------- */

/* Structured pruning removes whole rows or columns in groups: FFN neurons are rows of the
 * intermediate dense weight (group 1); attention heads are groups of `head_size` rows of the
 * query/key/value weights. The host applies the resulting mask to the coupled matrices too (the
 * columns of the FFN output / attention output weights), so the removal can be made physical. */
#define SK_AXIS_ROWS 0
#define SK_AXIS_COLS 1

typedef struct sk_structure {
    uint32_t struct_size;
    uint32_t axis;              /* SK_AXIS_ROWS or SK_AXIS_COLS */
    int64_t group_size;         /* rows/cols per group (1 for neurons, head_size for heads); divides the axis */
} sk_structure;

typedef struct sk_method sk_method;

typedef struct sk_pruner {
    uint32_t struct_size;

    /* Unstructured: fill `keep_mask` (rows*cols bytes, row-major, host-owned) with 1 = keep,
     * 0 = prune, removing a fraction `sparsity` (0 <= sparsity <= 1) of the weights of this layer,
     * as near round(sparsity * rows * cols) as the method's rule allows (the built-in magnitude and
     * WANDA hit it exactly; the host reports the sparsity reached, it does not check). `stats` is NULL
     * unless the method asked for statistics through "sankshep.calibration/1". */
    sk_status (*prune)(const sk_method *method, const sk_weight_view *weight,
                       const sk_activation_stats *stats, double sparsity, const sk_options *options,
                       uint8_t *keep_mask, sk_error *error);

    /* Structured: fill `keep` (one byte per row, or per column, along `structure->axis`) with 1/0,
     * equal within each group, removing round(sparsity * groups) groups. NULL when the method has
     * no structured mode. */
    sk_status (*prune_structured)(const sk_method *method, const sk_weight_view *weight,
                                  const sk_activation_stats *stats, const sk_structure *structure,
                                  double sparsity, const sk_options *options, uint8_t *keep,
                                  sk_error *error);
} sk_pruner;

/* ---- schedules ------------------------------------------------------------------------------- */

/* The training-time window of gradual pruning, in optimizer steps. Host-owned, valid during the call. */
typedef struct sk_schedule_window {
    uint32_t struct_size;
    int64_t start_step;         /* t0: first step at which masks are computed */
    int64_t end_step;           /* t0 + n*dt: sparsity reaches `final_sparsity` here; > start_step */
    int64_t frequency;          /* dt: masks are recomputed every `frequency` steps; >= 1 */
    double initial_sparsity;    /* s_i */
    double final_sparsity;      /* s_f */
} sk_schedule_window;

typedef struct sk_schedule {
    uint32_t struct_size;

    /* The sparsity the masks hold during step `step`, and whether masks are recomputed at it
     * (`*update` = 1) -- the host then calls the criterion with `*sparsity`. */
    sk_status (*sparsity_at)(const sk_method *method, const sk_schedule_window *window,
                             const sk_options *options, int64_t step, double *sparsity,
                             int32_t *update, sk_error *error);

    /* The name of the pruner method that scores weights for this schedule (e.g. "magnitude"),
     * usually an option; the host looks it up among all plugins. The returned string is owned by
     * the plugin or points into `options`, so it stays valid while `options` does; the host copies
     * it before `options` goes away. Never NULL. */
    const char *(*criterion)(const sk_method *method, const sk_options *options);
} sk_schedule;

/* ---- quantizers ------------------------------------------------------------------------------ */

/* A quantized linear layer: opaque, plugin-owned. */
typedef struct sk_quant_layer sk_quant_layer;

/* The host's sink for serialized blobs. `write` copies `bytes` bytes before returning. */
typedef struct sk_blob_writer {
    uint32_t struct_size;
    void *context;
    sk_status (*write)(struct sk_blob_writer *writer, const char *name, const void *data,
                       uint64_t bytes, sk_error *error);
} sk_blob_writer;

/* The host's source of blobs saved by `serialize`. `*data` is host-owned, 64-byte aligned, valid
 * until `deserialize` returns; a missing name gives SK_ERR_BAD_DATA. */
typedef struct sk_blob_reader {
    uint32_t struct_size;
    void *context;
    sk_status (*read)(struct sk_blob_reader *reader, const char *name, const void **data,
                      uint64_t *bytes, sk_error *error);
} sk_blob_reader;

typedef struct sk_quantizer {
    uint32_t struct_size;

    /* The tag stored beside every saved layer, e.g. "1"; `deserialize` receives the stored tag and
     * refuses (SK_ERR_BAD_DATA) tags it cannot read. */
    const char *format_version;

    /* Quantize `weight` (its `bias` is NULL from the sankshep host, see sk_weight_view). `stats` as
     * for pruners. On success `*layer` is a new object. */
    sk_status (*create)(const sk_method *method, const sk_weight_view *weight,
                        const sk_activation_stats *stats, const sk_options *options,
                        sk_quant_layer **layer, sk_error *error);

    /* y = x W^T (+ b when `create` was given a bias) for a batch: x (tokens, cols), y (tokens, rows),
     * both host-owned, row-major. */
    sk_status (*forward)(sk_quant_layer *layer, const float *x, int64_t tokens, float *y,
                         sk_error *error);

    /* Bytes the layer takes when saved (the sum of its blobs). */
    uint64_t (*saved_bytes)(const sk_quant_layer *layer);

    /* Write the layer as named blobs ("qweight", "scales", ...; names unique within the layer). The
     * host stores them with the method's name and `format_version`. */
    sk_status (*serialize)(const sk_quant_layer *layer, sk_blob_writer *writer, sk_error *error);

    /* Rebuild a layer of shape (rows, cols) from blobs saved by `serialize` with `format_version`. */
    sk_status (*deserialize)(const sk_method *method, const char *format_version, int64_t rows,
                             int64_t cols, sk_blob_reader *reader, const sk_options *options,
                             sk_quant_layer **layer, sk_error *error);

    /* Release a layer. Never fails; NULL is allowed. */
    void (*destroy)(sk_quant_layer *layer);

    /* ---- added in ABI 1, after the fields above (check SK_HAS_FIELD(q, sk_quantizer, dequantize)) */

    /* The layer's weight as the method reconstructs it: `weight` (rows, cols) float, row-major,
     * host-owned, filled completely (the bias is not included). The host uses it to export
     * dequantized FP32/FP16 checkpoints that other tools load, and to keep tables the host looks
     * up rather than multiplies (embeddings) in the quantized form the file stores. May be NULL
     * (the method cannot reconstruct its weight): such a quantizer still loads and runs, the host
     * keeps the embeddings float32 with a notice naming the method, and refuses the dequantized
     * export in one line naming it. */
    sk_status (*dequantize)(const sk_quant_layer *layer, float *weight, sk_error *error);
} sk_quantizer;

/* ---- extensions (by string id, through sk_method.get_extension) ------------------------------- */

/* "sankshep.calibration/1": the method needs statistics of each layer's input activations. */
#define SK_EXT_CALIBRATION "sankshep.calibration/1"
typedef struct sk_calibration_ext {
    uint32_t struct_size;
    uint32_t needs;             /* SK_STAT_* bits */
    int64_t max_sample_rows;    /* SK_STAT_INPUT_SAMPLES: most rows worth keeping; 0 otherwise */
} sk_calibration_ext;

/* "sankshep.scores/1": the pruner exposes its importance scores, so the host can rank weights of
 * ALL layers together (global pruning) with one threshold. */
#define SK_EXT_SCORES "sankshep.scores/1"
typedef struct sk_scores_ext {
    uint32_t struct_size;
    /* Fill `scores` (rows*cols floats, host-owned) with the importance of each weight: the method
     * prunes the lowest scores first, and ties go to the lower flat index. Scores are >= 0 and
     * comparable across layers. */
    sk_status (*score)(const sk_method *method, const sk_weight_view *weight,
                       const sk_activation_stats *stats, const sk_options *options, float *scores,
                       sk_error *error);
} sk_scores_ext;

/* "sankshep.blob_types/1" (quantizers): the element type of each blob `serialize` writes, so the
 * host stores the blobs as typed tensors (Sankshep's own format, model.quantized.safetensors, shaped
 * (rows, n / rows) when that divides) instead of guessing from their names. Without it, and for a
 * name answered SK_BLOB_U8, a blob is stored as raw bytes. The bytes, and what `deserialize`
 * receives, are the same either way. */
#define SK_EXT_BLOB_TYPES "sankshep.blob_types/1"
#define SK_BLOB_U8  0  /* raw bytes (also: packed codes) */
#define SK_BLOB_I8  1
#define SK_BLOB_F16 2  /* IEEE half */
#define SK_BLOB_F32 3
#define SK_BLOB_I32 4
typedef struct sk_blob_types_ext {
    uint32_t struct_size;
    /* SK_BLOB_* of the blob `blob_name` this method's layers write; SK_BLOB_U8 for a name it does
     * not know. Never fails. */
    uint32_t (*blob_type)(const sk_method *method, const char *blob_name);
} sk_blob_types_ext;

/* ---- methods and the entry ------------------------------------------------------------------- */

#define SK_METHOD_PRUNER    1
#define SK_METHOD_SCHEDULE  2
#define SK_METHOD_QUANTIZER 3

/* One method a plugin registers. Plugin-owned, immutable, lives until the library is unloaded. */
struct sk_method {
    uint32_t struct_size;
    uint32_t kind;                       /* SK_METHOD_* */
    const char *name;                    /* what users type: [a-z0-9_-], unique among ALL loaded plugins */
    const char *version;                 /* of the method, e.g. "1.0.0" */
    const char *description;             /* one line */
    uint32_t option_count;
    const sk_option_spec *const *options;  /* `option_count` pointers */

    /* Exactly the table for `kind` is non-NULL. */
    const sk_pruner *pruner;
    const sk_schedule *schedule;
    const sk_quantizer *quantizer;

    /* An optional feature by id, or NULL when the method does not have it. May be NULL itself. */
    const void *(*get_extension)(const sk_method *method, const char *id);

    /* Free for the plugin's own use (e.g. a pointer to per-method constants); the host ignores it. */
    const void *plugin_data;
};

/* What `sankshep_plugin_entry` returns. Plugin-owned, immutable, lives until unloaded. */
typedef struct sk_plugin_entry {
    uint32_t struct_size;
    uint32_t abi_version;                /* SANKSHEP_PLUGIN_ABI_VERSION the plugin was built with */
    const char *name;                    /* of the plugin, e.g. "sankshep-magnitude" */
    const char *version;                 /* of the plugin, e.g. "1.0.0" */

    /* Called once, first. `host` stays valid until `deinit` returns; keep the pointer. Returning
     * anything but SK_OK makes the host refuse the library (with the message). May be NULL. */
    sk_status (*init)(const sk_host *host, sk_error *error);

    /* Called once, last; no call into the library follows. May be NULL. */
    void (*deinit)(void);

    /* The methods, by index 0 ..< method_count(); valid after `init`. */
    uint32_t (*method_count)(void);
    const sk_method *(*method_at)(uint32_t index);
} sk_plugin_entry;

/* The one exported symbol. `host_abi_version` is the version the host speaks; return an entry of
 * that version, or of another one (the host then refuses the library naming both), or NULL if the
 * plugin cannot describe itself at all. Must not fail otherwise, allocate per call, or call the host. */
typedef const sk_plugin_entry *(*sk_plugin_entry_fn)(uint32_t host_abi_version);
SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* SANKSHEP_PLUGIN_H */
