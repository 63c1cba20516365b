/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C++ calls the DHT backend (disc_dht.c) makes on OpenDHT's runner, implemented in
 * disc_dht_shim.cpp (built only with -Ddht=enabled). A value callback runs on OpenDHT's own
 * threads; free_ctx runs once, on whichever thread drops the operation's last callback.
 */
#ifndef RLY_CONTROL_DISC_DHT_SHIM_H
#define RLY_CONTROL_DISC_DHT_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include <opendht/opendht_c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes in an OpenDHT infohash. */
#define RLY_DHT_HASH_LEN 20
/* Bytes of the only values our type stores: one struct rly_disc_record. */
#define RLY_DHT_VALUE_LEN 136

typedef void (*rly_dht_value_fn)(void *ctx, const uint8_t *data, size_t len);

/*
 * Run @p r bound to @p ip4:@p port (0: any free port) and register value type @p type_id whose
 * values expire after @p expire_s. 0, or -1 with the reason in @p err.
 */
int rly_dht_shim_run(dht_runner *r, const char *ip4, uint16_t port, uint16_t type_id,
		     uint32_t expire_s, char *err, size_t err_len);
/* Put @p data as a value of type @p type_id under @p hash (not permanent). */
void rly_dht_shim_put(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN], const uint8_t *data,
		      size_t len, uint16_t type_id);
/* Get the values under @p hash: @p fn for each. 0, or -1 (then free_ctx has run). */
int rly_dht_shim_get(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN], rly_dht_value_fn fn,
		     void *ctx, void (*free_ctx)(void *));
/* Listen under @p hash: @p fn for each new value. A token for rly_dht_shim_cancel, or NULL. */
void *rly_dht_shim_listen(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN], rly_dht_value_fn fn,
			  void *ctx, void (*free_ctx)(void *));
/*
 * Cancel a listen and free its @p token; its context is freed once OpenDHT lets go of it. With
 * @p r NULL (the runner already deleted), only free the token.
 */
void rly_dht_shim_cancel(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN], void *token);

#ifdef __cplusplus
}
#endif

#endif
