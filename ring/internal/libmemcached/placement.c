/*
 * placement prints, for each key read from standard input (one per line),
 * the index of the server libmemcached's ketama distribution picks for it.
 * ring's TestLibmemcached compiles and runs it when libmemcached's headers
 * are installed, to record testdata/libmemcached.json.
 *
 * usage: placement weighted(0|1) hash(default|md5) host:port:weight...
 *
 * weighted 1 sets MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (which also selects
 * MD5); hash md5 sets MEMCACHED_BEHAVIOR_HASH and _KETAMA_HASH to MD5.
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: placement weighted(0|1) hash(default|md5) host:port:weight...\n");
        return 2;
    }
    memcached_st *memc = memcached_create(NULL);
    if (memc == NULL) {
        return 1;
    }
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA, 1);
    if (atoi(argv[1])) {
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    }
    if (strcmp(argv[2], "md5") == 0) {
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_HASH, MEMCACHED_HASH_MD5);
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_HASH, MEMCACHED_HASH_MD5);
    }
    for (int i = 3; i < argc; i++) {
        char host[256];
        unsigned port, weight;
        char *p = strchr(argv[i], ':');
        if (p == NULL || (size_t)(p - argv[i]) >= sizeof(host)
            || sscanf(p + 1, "%u:%u", &port, &weight) != 2) {
            fprintf(stderr, "bad server %s\n", argv[i]);
            return 2;
        }
        memcpy(host, argv[i], (size_t)(p - argv[i]));
        host[p - argv[i]] = '\0';
        memcached_return_t rc = memcached_server_add_with_weight(memc, host, (in_port_t)port, weight);
        if (rc != MEMCACHED_SUCCESS) {
            fprintf(stderr, "cannot add %s: %s\n", argv[i], memcached_strerror(memc, rc));
            return 1;
        }
    }
    char line[1024];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t n = strcspn(line, "\n");
        printf("%u\n", memcached_generate_hash(memc, line, n));
    }
    memcached_free(memc);
    return 0;
}
