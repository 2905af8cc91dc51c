/*
 * knn_int.h - helpers shared by query/ files, not a public API.
 *
 * A bounded max-heap keeps the kk best (smallest distance) candidates of
 * one query.  Order is (distance, id): among equal distances the smaller id
 * wins, so a top-k never depends on how a scan was split between threads.
 */
#ifndef REFSCAN_KNN_INT_H
#define REFSCAN_KNN_INT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Offer (d, id) to the heap held in hd/hi (capacity kk, *size used).
 * Keeps the kk best.  Never allocates.
 */
void knn_heap_push(float *hd, int64_t *hi, size_t *size, size_t kk,
		   float d, int64_t id);

/*
 * Sort the heap ascending in place and pad slots size..kk-1 with
 * (+inf, -1).  Afterwards hd/hi are a plain result row.
 */
void knn_heap_finish(float *hd, int64_t *hi, size_t size, size_t kk);

/* Uniform 64-bit generator (splitmix64); *state is advanced. */
uint64_t knn_rand(uint64_t *state);

#endif
