/*
 * Drives a communicator plugin through the header alone, as a host would: run it under a launcher
 * (`mpirun -np N communicator_check libSankshepMPI.so`). Every rank checks the results of each
 * collective itself and prints one line, "rank R of N: ok" or "rank R of N: FAILED <what>".
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "sankshep_plugin.h"

#define CHECK(condition, what) do { if (!(condition)) { printf("rank %d of %d: FAILED %s\n", rank, size, what); return 1; } } while (0)

int main(int argc, char **argv) {
    int rank = -1, size = -1;
    if (argc != 2) { fprintf(stderr, "usage: communicator_check libplugin.so\n"); return 2; }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(library != NULL, dlerror());
    sk_plugin_entry_fn entry_fn = (sk_plugin_entry_fn)dlsym(library, SANKSHEP_PLUGIN_ENTRY_SYMBOL);
    CHECK(entry_fn != NULL, "no entry symbol");
    const sk_plugin_entry *entry = entry_fn(SANKSHEP_PLUGIN_ABI_VERSION);
    const sk_method *method = entry->method_at(0);
    CHECK(method->kind == SK_METHOD_COMMUNICATOR, "not a communicator");
    const sk_communicator *c = method->get_extension(method, SK_EXT_COMMUNICATOR);
    CHECK(c != NULL && c->struct_size >= sizeof(sk_communicator), "no communicator table");
    char message[512] = "";
    sk_error error = {sizeof error, sizeof message, message};
    sk_options options = {sizeof options, 0, NULL};
    sk_comm *comm = NULL;
    CHECK(c->open(method, &options, &comm, &error) == SK_OK, message);
    rank = c->rank(comm);
    size = c->size(comm);

    /* allreduce: rank r contributes r + i at i; the sum is size*i + size*(size-1)/2, the same everywhere. */
    enum { COUNT = 100003 };
    float *values = malloc(COUNT * sizeof(float));
    for (int i = 0; i < COUNT; i++) values[i] = (float)(rank + i % 1000);
    CHECK(c->allreduce_sum_f32(comm, values, COUNT, &error) == SK_OK, message);
    for (int i = 0; i < COUNT; i++)
        CHECK(values[i] == (float)(size * (i % 1000) + size * (size - 1) / 2), "allreduce sum");

    /* broadcast from the last rank. */
    char text[32];
    snprintf(text, sizeof text, "from rank %d", rank);
    CHECK(c->broadcast(comm, text, sizeof text, size - 1, &error) == SK_OK, message);
    char expected[32];
    snprintf(expected, sizeof expected, "from rank %d", size - 1);
    CHECK(strcmp(text, expected) == 0, "broadcast");

    /* gather to rank 0, in rank order. */
    int32_t mine[2] = {rank, rank * rank};
    int32_t *all = rank == 0 ? malloc((size_t)size * sizeof mine) : NULL;
    CHECK(c->gather(comm, mine, sizeof mine, all, 0, &error) == SK_OK, message);
    if (rank == 0)
        for (int r = 0; r < size; r++) CHECK(all[2 * r] == r && all[2 * r + 1] == r * r, "gather order");

    /* errors are statuses with a message, not aborts. */
    CHECK(c->broadcast(comm, text, 1, size, &error) == SK_ERR_INVALID_ARGUMENT && message[0] != '\0', "bad root accepted");

    CHECK(c->barrier(comm, &error) == SK_OK, message);
    printf("rank %d of %d: ok (%s)\n", rank, size, c->engine(comm));
    c->close(comm);
    free(values);
    free(all);
    return 0;
}
