// SPDX-License-Identifier: Apache-2.0
//
// The C++ side of the DHT backend, compiled only with -Ddht=enabled (a relay-control linked with
// OpenDHT is GPL-3+ as a whole; see control/README.md). OpenDHT's C API (opendht_c.h) binds 0.0.0.0 and [::] only, and its get and
// listen contexts have no defined end of life, so these few calls go to the C++ runner instead:
//  - run: bind the given IPv4 address only, no multicast peer discovery, and register our value
//    type, whose expiry (the record's TTL) lets storing nodes drop stale records about when they
//    stop verifying, instead of OpenDHT's default 10 minutes;
//  - get and listen: each callback owns its context through a shared_ptr, so the context is
//    freed exactly when OpenDHT drops the last callback (done, cancelled, or runner deleted).
// Like OpenDHT's own c/opendht.cpp, it treats a dht_runner* as a dht::DhtRunner*.
#include <opendht/dhtrunner.h>
#include <opendht/opendht_c.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "disc_dht_shim.h"

namespace {

dht::DhtRunner *runner_of(dht_runner *r)
{
	return reinterpret_cast<dht::DhtRunner *>(r);
}

dht::InfoHash hash_of(const uint8_t h[RLY_DHT_HASH_LEN])
{
	return dht::InfoHash(h, RLY_DHT_HASH_LEN);
}

// A C context freed by its owner's function when the last callback holding it goes.
struct Ctx {
	Ctx(rly_dht_value_fn f, void *c, void (*fr)(void *)) : fn(f), ctx(c), free_ctx(fr) {}
	Ctx(const Ctx &) = delete;
	Ctx &operator=(const Ctx &) = delete;
	rly_dht_value_fn fn;
	void *ctx;
	void (*free_ctx)(void *);
	~Ctx()
	{
		if (free_ctx)
			free_ctx(ctx);
	}
};

void hand_over(const Ctx &c, const std::vector<std::shared_ptr<dht::Value>> &vals)
{
	for (const auto &v : vals)
		if (v)
			c.fn(c.ctx, v->data.data(), v->data.size());
}

} // namespace

extern "C" int rly_dht_shim_run(dht_runner *r, const char *ip4, uint16_t port, uint16_t type_id,
				uint32_t expire_s, char *err, size_t err_len)
{
	try {
		dht::DhtRunner::Config cfg;
		cfg.threaded = true;
		cfg.peer_discovery = false;
		cfg.peer_publish = false;
		auto addrs = dht::SockAddr::resolve(ip4, std::to_string(port));
		if (addrs.empty())
			throw std::runtime_error(std::string("cannot resolve ") + ip4);
		cfg.bind4 = addrs.front();
		runner_of(r)->run(cfg, {});
		runner_of(r)->registerType(
			dht::ValueType(type_id, "relay-disc-record", std::chrono::seconds(expire_s),
				       [](dht::InfoHash, const std::shared_ptr<dht::Value> &v,
					  const dht::InfoHash &, const dht::SockAddr &) {
					       // Storing nodes only check the size; readers verify.
					       return v && v->data.size() == RLY_DHT_VALUE_LEN;
				       }));
		return 0;
	} catch (const std::exception &e) {
		snprintf(err, err_len, "%s", e.what());
		return -1;
	}
}

extern "C" void rly_dht_shim_put(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN],
				 const uint8_t *data, size_t len, uint16_t type_id)
{
	try {
		auto v = std::make_shared<dht::Value>(type_id, data, len);
		runner_of(r)->put(hash_of(hash), v, dht::DoneCallback{}, dht::time_point::max(), false);
	} catch (const std::exception &) {
		// A put that cannot be queued is a lost announcement; the next refresh puts again.
	}
}

extern "C" int rly_dht_shim_get(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN],
				rly_dht_value_fn fn, void *ctx, void (*free_ctx)(void *))
{
	try {
		auto c = std::make_shared<Ctx>(fn, ctx, free_ctx);
		runner_of(r)->get(
			hash_of(hash),
			[c](const std::vector<std::shared_ptr<dht::Value>> &vals) {
				hand_over(*c, vals);
				return true;
			},
			[c](bool, const std::vector<std::shared_ptr<dht::Node>> &) {});
		return 0;
	} catch (const std::exception &) {
		return -1;
	}
}

extern "C" void *rly_dht_shim_listen(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN],
				     rly_dht_value_fn fn, void *ctx, void (*free_ctx)(void *))
{
	try {
		auto c = std::make_shared<Ctx>(fn, ctx, free_ctx);
		auto token = runner_of(r)->listen(
			hash_of(hash),
			[c](const std::vector<std::shared_ptr<dht::Value>> &vals, bool expired) {
				if (!expired)
					hand_over(*c, vals);
				return true;
			});
		return new std::shared_future<size_t>(token.share());
	} catch (const std::exception &) {
		return nullptr;
	}
}

extern "C" void rly_dht_shim_cancel(dht_runner *r, const uint8_t hash[RLY_DHT_HASH_LEN],
				    void *token)
{
	auto t = static_cast<std::shared_future<size_t> *>(token);

	try {
		if (r)
			runner_of(r)->cancelListen(hash_of(hash), *t);
	} catch (const std::exception &) {
	}
	delete t;
}
