/*
 * random_pruner.c -- an out-of-tree Sankshep plugin in plain C.
 *
 * Registers one pruner, `random`: removes exactly round(sparsity * rows * cols) weights chosen
 * uniformly at random (a seeded, reproducible draw). Pruning research uses it as the control a real
 * criterion must beat. Built with nothing but the plugin header:
 *
 *     cc -shared -fPIC -O2 -I ../../Sources/PluginAPI/include random_pruner.c -o librandom_pruner.so
 */
#include <stdio.h>
#include <stdlib.h>

#include "sankshep_plugin.h"

static const sk_host *g_host; /* from init until deinit */

/* splitmix64: a tiny, well-mixed generator; the same seed gives the same mask everywhere. */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static sk_status random_prune(const sk_method *method, const sk_weight_view *weight,
                              const sk_activation_stats *stats, double sparsity,
                              const sk_options *options, uint8_t *keep_mask, sk_error *error) {
    (void)method; (void)stats;
    if (weight == NULL || keep_mask == NULL || weight->rows <= 0 || weight->cols <= 0)
        return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "random: empty weight or no mask buffer");
    if (!(sparsity >= 0.0 && sparsity <= 1.0))
        return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "random: sparsity outside 0...1");

    const char *seed_text = sk_options_get(options, "seed");
    uint64_t state = seed_text ? (uint64_t)strtoll(seed_text, NULL, 10) : 0;
    int64_t n = weight->rows * weight->cols;
    int64_t k = (int64_t)(sparsity * (double)n + 0.5); /* round half up; sparsity >= 0 */
    if (k > n) k = n;

    /* A partial Fisher-Yates shuffle of the indices: the first k are the pruned ones. The index
     * array is scratch memory from the host, released before returning. */
    int64_t *order = g_host->alloc(g_host, (size_t)n * sizeof(int64_t), 64);
    if (order == NULL) return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "random: no memory for the index array");
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)(next_random(&state) % (uint64_t)(n - i));
        int64_t t = order[i]; order[i] = order[j]; order[j] = t;
    }
    for (int64_t i = 0; i < n; i++) keep_mask[i] = 1;
    for (int64_t i = 0; i < k; i++) keep_mask[order[i]] = 0;
    g_host->free(g_host, order);

    char line[256];
    snprintf(line, sizeof line, "random: %s: pruned %lld of %lld weights",
             weight->layer_name ? weight->layer_name : "?", (long long)k, (long long)n);
    g_host->log(g_host, SK_LOG_DEBUG, line);
    return SK_OK;
}

static const sk_option_spec seed_option = {
    .struct_size = sizeof(sk_option_spec),
    .type = SK_OPTION_INT,
    .name = "seed",
    .default_value = "0",
    .help = "seed of the random draw (same seed, same mask)",
    .choices = NULL,
};
static const sk_option_spec *const random_options[] = { &seed_option };

static const sk_pruner random_pruner = {
    .struct_size = sizeof(sk_pruner),
    .prune = random_prune,
    .prune_structured = NULL, /* no structured mode */
};

static const sk_method random_method = {
    .struct_size = sizeof(sk_method),
    .kind = SK_METHOD_PRUNER,
    .name = "random",
    .version = "1.0.0",
    .description = "remove a seeded random choice of weights (the control for real criteria)",
    .option_count = 1,
    .options = random_options,
    .pruner = &random_pruner,
    .schedule = NULL,
    .quantizer = NULL,
    .get_extension = NULL, /* no calibration, no global scores */
    .plugin_data = NULL,
};

static sk_status plugin_init(const sk_host *host, sk_error *error) {
    (void)error;
    g_host = host;
    return SK_OK;
}

static void plugin_deinit(void) { g_host = NULL; }

static uint32_t plugin_method_count(void) { return 1; }

static const sk_method *plugin_method_at(uint32_t index) { return index == 0 ? &random_method : NULL; }

static const sk_plugin_entry entry = {
    .struct_size = sizeof(sk_plugin_entry),
    .abi_version = SANKSHEP_PLUGIN_ABI_VERSION,
    .name = "example-random",
    .version = "1.0.0",
    .init = plugin_init,
    .deinit = plugin_deinit,
    .method_count = plugin_method_count,
    .method_at = plugin_method_at,
};

SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t host_abi_version) {
    (void)host_abi_version; /* we speak version 1; the host refuses us, naming both, if it does not */
    return &entry;
}
