/*
 * A communicator plugin for the tests: a job of one rank, in plain C against the header alone, so the
 * host's side of the communicator ABI (loading, the calls, errors) is tested in the test process
 * without MPI. Every call counts itself in `calls`, so a test can see how many collectives ran.
 * Built with -DBROKEN_TABLE it leaves `gather` NULL, which the host must refuse.
 */
#include <stdlib.h>

#include "sankshep_plugin.h"

struct sk_comm { int64_t calls; int64_t allreduced_floats; };
static struct sk_comm the_comm;

static sk_status open_comm(const sk_method *m, const sk_options *o, sk_comm **out, sk_error *e) {
    (void)m; (void)o; (void)e;
    the_comm.calls = 0;
    *out = &the_comm;
    return SK_OK;
}
static int32_t rank(const sk_comm *c) { (void)c; return 0; }
static int32_t size(const sk_comm *c) { (void)c; return 1; }
static sk_status allreduce(sk_comm *c, float *data, int64_t count, sk_error *e) {
    (void)data;
    c->calls++;
    c->allreduced_floats += count;
    if (count < 0) return sk_error_set(e, SK_ERR_INVALID_ARGUMENT, "single: negative count");
    return SK_OK;  /* the sum over one rank is the rank's own values */
}
static sk_status broadcast(sk_comm *c, void *data, int64_t bytes, int32_t root, sk_error *e) {
    (void)data; (void)bytes;
    c->calls++;
    return root == 0 ? SK_OK : sk_error_set(e, SK_ERR_INVALID_ARGUMENT, "single: no such root rank");
}
static sk_status gather(sk_comm *c, const void *send, int64_t bytes, void *receive, int32_t root, sk_error *e) {
    c->calls++;
    if (root != 0) return sk_error_set(e, SK_ERR_INVALID_ARGUMENT, "single: no such root rank");
    if (bytes > 0) memcpy(receive, send, (size_t)bytes);
    return SK_OK;
}
static sk_status barrier(sk_comm *c, sk_error *e) { (void)e; c->calls++; return SK_OK; }
static void close_comm(sk_comm *c) { (void)c; }
static const char *engine(const sk_comm *c) { (void)c; return "single-rank test engine"; }

/* For the tests: collectives so far, and floats summed. */
SK_EXPORT int64_t single_rank_calls(void) { return the_comm.calls; }
SK_EXPORT int64_t single_rank_allreduced_floats(void) { return the_comm.allreduced_floats; }

static const sk_communicator table = {
    sizeof(sk_communicator), open_comm, rank, size, allreduce, broadcast,
#ifdef BROKEN_TABLE
    NULL,   /* gather stays defined, unused: (void)gather below */
#else
    gather,
#endif
    barrier, close_comm, engine,
};

static const void *get_extension(const sk_method *m, const char *id) {
    (void)m;
    (void)gather;
    return strcmp(id, SK_EXT_COMMUNICATOR) == 0 ? &table : NULL;
}

static const sk_method method = {
    sizeof(sk_method), SK_METHOD_COMMUNICATOR, "single", "1.0.0", "one rank, for tests", 0, NULL,
    NULL, NULL, NULL, get_extension, NULL,
};
static uint32_t method_count(void) { return 1; }
static const sk_method *method_at(uint32_t i) { return i == 0 ? &method : NULL; }
static const sk_plugin_entry entry = {
    sizeof(sk_plugin_entry), SANKSHEP_PLUGIN_ABI_VERSION, "single-rank-test", "1.0.0", NULL, NULL, method_count, method_at,
};
SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t v) { (void)v; return &entry; }
