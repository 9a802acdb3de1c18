/* Preloaded (LD_PRELOAD) into tests/harness/peak_bytes.py's ranks: the bytes of torch's CPU tensors
 * live at every moment, on EVERY thread, and the highest value since the last reset.
 *
 * torch allocates each CPU tensor's storage with posix_memalign (c10/core/impl/alloc_cpu.cpp,
 * 64-byte alignment) and frees it with free(). This file replaces those two (and the
 * one other function that may receive such a pointer, realloc), as glibc allows
 * ("Replacing malloc" in its manual), and hands the real work to glibc's own __libc_memalign
 * and __libc_free. Every block posix_memalign hands out at an alignment of 32 bytes or more
 * is counted: torch's tensor storages, and any other library's aligned buffers that come
 * this way (oneDNN's, for one: real memory of the step too). A counted block carries a
 * 32-byte header in front of what the caller gets: a tag derived from its own address (so a
 * stale or foreign header never matches), its size and its alignment. Everything else
 * (malloc, calloc, smaller alignments) passes through uncounted.
 *
 * Why: torch's profiler sees only the threads it started on, and gloo's worker threads free
 * the buffers they communicated; here the free is counted on whatever thread makes it.
 *
 * Read from Python with ctypes: abcitrain_live_bytes(), abcitrain_peak_bytes(),
 * abcitrain_reset_peak() (the peak becomes the bytes live now).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_malloc(size_t size);

#define HEADER 32
static const uint64_t TAG = 0x7a65726f70656b31ULL;   /* any constant; xor-ed with the address */

static long long live_bytes, peak_bytes;

struct header { uint64_t alignment; uint64_t size; uint64_t tag; uint64_t unused; };

static struct header *header_of(void *ptr) { return (struct header *)((char *)ptr - HEADER); }

static int counted(void *ptr) {
    return ptr != NULL && header_of(ptr)->tag == (TAG ^ (uint64_t)(uintptr_t)ptr);
}

static void add(long long delta) {
    long long now = __atomic_add_fetch(&live_bytes, delta, __ATOMIC_SEQ_CST);
    long long seen = __atomic_load_n(&peak_bytes, __ATOMIC_SEQ_CST);
    while (now > seen &&
           !__atomic_compare_exchange_n(&peak_bytes, &seen, now, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
    }
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    /* the header needs HEADER bytes in front; smaller alignments are not torch's */
    size_t pad = alignment >= HEADER ? alignment : 0;
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    char *base = __libc_memalign(alignment, size + pad);
    if (base == NULL) return ENOMEM;
    if (pad == 0) { *out = base; return 0; }
    char *ptr = base + pad;
    struct header *h = header_of(ptr);
    h->alignment = alignment;
    h->size = size;
    h->tag = TAG ^ (uint64_t)(uintptr_t)ptr;
    add((long long)size);
    *out = ptr;
    return 0;
}

void free(void *ptr) {
    if (!counted(ptr)) { __libc_free(ptr); return; }
    struct header *h = header_of(ptr);
    h->tag = 0;
    add(-(long long)h->size);
    __libc_free((char *)ptr - h->alignment);
}

void *realloc(void *ptr, size_t size) {
    if (!counted(ptr)) return __libc_realloc(ptr, size);
    /* a counted block moves into an uncounted one: copy, then free as usual */
    void *moved = __libc_malloc(size);
    if (moved == NULL) return NULL;
    size_t old = header_of(ptr)->size;
    memcpy(moved, ptr, old < size ? old : size);
    free(ptr);
    return moved;
}

long long abcitrain_live_bytes(void) { return __atomic_load_n(&live_bytes, __ATOMIC_SEQ_CST); }

long long abcitrain_peak_bytes(void) { return __atomic_load_n(&peak_bytes, __ATOMIC_SEQ_CST); }

void abcitrain_reset_peak(void) {
    __atomic_store_n(&peak_bytes, __atomic_load_n(&live_bytes, __ATOMIC_SEQ_CST),
                     __ATOMIC_SEQ_CST);
}
