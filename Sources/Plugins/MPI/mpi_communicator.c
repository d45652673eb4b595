/*
 * mpi_communicator.c -- the `mpi` communicator: the sankshep.communicator/1 table of
 * sankshep_plugin.h over MPI (built against Open MPI; any MPI-3 library would do).
 *
 * The only file of Sankshep that includes <mpi.h> and links libmpi: the host never does. It is
 * built only where libopenmpi-dev is installed (Package.swift looks for mpi.h).
 *
 * Every call works on MPI_COMM_WORLD with MPI_ERRORS_RETURN, so a failure becomes a status and a
 * message instead of MPI's default abort. Counts above INT_MAX go in chunks (MPI's counts are int).
 *
 * Waiting: MPI's blocking calls spin on a core until the other ranks arrive. Broadcast, gather and
 * barrier are where ranks wait long (a rank done with its folds waits for the others), and a spinning
 * wait takes the core the others' computation needs; so those start the non-blocking collective
 * (MPI-3) and poll it with MPI_Test, sleeping between polls from 20 us up to 2 ms. The allreduce is
 * the blocking MPI_Allreduce: data-parallel ranks reach it together, and a non-blocking collective
 * advances only inside MPI calls, so polling it with pauses stalls each of its rounds (measured: 658 MB
 * took seconds longer).
 */
#define _GNU_SOURCE 1 /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mpi.h>

#include "sankshep_plugin.h"

struct sk_comm {
    int rank, size;
    char engine[MPI_MAX_LIBRARY_VERSION_STRING + 1];
};

/* MPI's error text after `what`, one line. */
static sk_status mpi_failure(sk_error *error, int code, const char *what) {
    char text[MPI_MAX_ERROR_STRING + 1] = "";
    int length = 0;
    MPI_Error_string(code, text, &length);
    char line[512];
    snprintf(line, sizeof line, "mpi: %s failed: %s", what, text);
    for (char *c = line; *c; c++) if (*c == '\n' || *c == '\r') *c = ' ';
    return sk_error_set(error, SK_ERR_INTERNAL, line);
}

/* Open MPI loads its transports as components that expect libmpi's symbols to be global; the host
 * loads plugins with RTLD_LOCAL, so libmpi is promoted to RTLD_GLOBAL (it is already loaded:
 * RTLD_NOLOAD only changes its flags) before MPI_Init opens any component. */
static void make_libmpi_global(void) {
    Dl_info info;
    if (dladdr((void *)&MPI_Init_thread, &info) != 0 && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

/* Completes `request`, sleeping between polls (see "Waiting" above). */
static int wait_idly(MPI_Request *request) {
    long pause_ns = 20 * 1000;
    for (;;) {
        int done = 0;
        int code = MPI_Test(request, &done, MPI_STATUS_IGNORE);
        if (code != MPI_SUCCESS || done) return code;
        struct timespec pause = {0, pause_ns};
        nanosleep(&pause, NULL);
        if (pause_ns < 2 * 1000 * 1000) pause_ns *= 2;
    }
}

static sk_status comm_open(const sk_method *method, const sk_options *options, sk_comm **out, sk_error *error) {
    (void)method; (void)options;
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised) return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "mpi: open called twice in one process");
    sk_comm *comm = calloc(1, sizeof *comm);
    if (comm == NULL) return sk_error_set(error, SK_ERR_OUT_OF_MEMORY, "mpi: out of memory");
    make_libmpi_global();
    int provided = MPI_THREAD_SINGLE;
    int code = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (code != MPI_SUCCESS) { free(comm); return mpi_failure(error, code, "MPI_Init_thread"); }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        free(comm);
        return sk_error_set(error, SK_ERR_UNSUPPORTED,
                            "mpi: the MPI library offers no MPI_THREAD_SERIALIZED (gradients are summed on a background thread)");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &comm->size);
    int length = 0;
    MPI_Get_library_version(comm->engine, &length);
    /* "Open MPI v4.1.4, package: ..., ident: ..., repo rev: ..." -> its first part, one line. */
    for (int i = 0; comm->engine[i]; i++)
        if (comm->engine[i] == ',' || comm->engine[i] == '\n') { comm->engine[i] = '\0'; break; }
    *out = comm;
    return SK_OK;
}

static int32_t comm_rank(const sk_comm *comm) { return comm->rank; }
static int32_t comm_size(const sk_comm *comm) { return comm->size; }
static const char *comm_engine(const sk_comm *comm) { return comm->engine; }

static sk_status comm_allreduce(sk_comm *comm, float *data, int64_t count, sk_error *error) {
    (void)comm;
    if (count < 0) return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "mpi: allreduce of a negative count");
    for (int64_t done = 0; done < count;) {
        int chunk = count - done > INT_MAX ? INT_MAX : (int)(count - done);
        int code = MPI_Allreduce(MPI_IN_PLACE, data + done, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (code != MPI_SUCCESS) return mpi_failure(error, code, "MPI_Allreduce");
        done += chunk;
    }
    return SK_OK;
}

static sk_status comm_broadcast(sk_comm *comm, void *data, int64_t bytes, int32_t root, sk_error *error) {
    if (bytes < 0 || root < 0 || root >= comm->size)
        return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "mpi: broadcast of a negative size or from a rank outside the job");
    for (int64_t done = 0; done < bytes;) {
        int chunk = bytes - done > INT_MAX ? INT_MAX : (int)(bytes - done);
        MPI_Request request;
        int code = MPI_Ibcast((char *)data + done, chunk, MPI_BYTE, root, MPI_COMM_WORLD, &request);
        if (code == MPI_SUCCESS) code = wait_idly(&request);
        if (code != MPI_SUCCESS) return mpi_failure(error, code, "MPI_Bcast");
        done += chunk;
    }
    return SK_OK;
}

static sk_status comm_gather(sk_comm *comm, const void *send, int64_t bytes, void *receive, int32_t root, sk_error *error) {
    if (bytes < 0 || bytes > INT_MAX || root < 0 || root >= comm->size)
        return sk_error_set(error, SK_ERR_INVALID_ARGUMENT, "mpi: gather of a size outside 0...INT_MAX bytes or to a rank outside the job");
    MPI_Request request;
    int code = MPI_Igather(send, (int)bytes, MPI_BYTE, receive, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD, &request);
    if (code == MPI_SUCCESS) code = wait_idly(&request);
    if (code != MPI_SUCCESS) return mpi_failure(error, code, "MPI_Gather");
    return SK_OK;
}

static sk_status comm_barrier(sk_comm *comm, sk_error *error) {
    (void)comm;
    MPI_Request request;
    int code = MPI_Ibarrier(MPI_COMM_WORLD, &request);
    if (code == MPI_SUCCESS) code = wait_idly(&request);
    if (code != MPI_SUCCESS) return mpi_failure(error, code, "MPI_Barrier");
    return SK_OK;
}

static void comm_close(sk_comm *comm) {
    if (comm == NULL) return;
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Finalize();
    free(comm);
}

static const sk_communicator communicator = {
    .struct_size = sizeof(sk_communicator),
    .open = comm_open,
    .rank = comm_rank,
    .size = comm_size,
    .allreduce_sum_f32 = comm_allreduce,
    .broadcast = comm_broadcast,
    .gather = comm_gather,
    .barrier = comm_barrier,
    .close = comm_close,
    .engine = comm_engine,
};

static const void *get_extension(const sk_method *method, const char *id) {
    (void)method;
    return strcmp(id, SK_EXT_COMMUNICATOR) == 0 ? &communicator : NULL;
}

static const sk_method mpi_method = {
    .struct_size = sizeof(sk_method),
    .kind = SK_METHOD_COMMUNICATOR,
    .name = "mpi",
    .version = "1.0.0",
    .description = "MPI (Open MPI): the ranks mpirun starts, on one host or several",
    .option_count = 0,
    .options = NULL,
    .pruner = NULL,
    .schedule = NULL,
    .quantizer = NULL,
    .get_extension = get_extension,
    .plugin_data = NULL,
};

static uint32_t method_count(void) { return 1; }
static const sk_method *method_at(uint32_t index) { return index == 0 ? &mpi_method : NULL; }

static const sk_plugin_entry entry = {
    .struct_size = sizeof(sk_plugin_entry),
    .abi_version = SANKSHEP_PLUGIN_ABI_VERSION,
    .name = "sankshep-mpi",
    .version = "1.0.0",
    .init = NULL,
    .deinit = NULL,
    .method_count = method_count,
    .method_at = method_at,
};

SK_EXPORT const sk_plugin_entry *sankshep_plugin_entry(uint32_t host_abi_version) {
    (void)host_abi_version;
    return &entry;
}
