/* SPDX-License-Identifier: Apache-2.0 */
/* Strings for every X-macro list in include/relay/: generated from the same lists as the enums. */
#include <ctype.h>
#include <stddef.h>

#include "relay/counters.h"
#include "relay/shm.h"
#include "relay/wire.h"

static const char *const wire_err_str[] = {
#define X(name, desc) [RLY_WIRE_ERR_##name] = desc,
	RLY_FOREACH_WIRE_ERR(X)
#undef X
};

static const char *const wire_err_name[] = {
#define X(name, desc) [RLY_WIRE_ERR_##name] = #name,
	RLY_FOREACH_WIRE_ERR(X)
#undef X
};

const char *rly_wire_err_str(enum rly_wire_err e)
{
	return (unsigned)e < RLY_WIRE_ERR_MAX ? wire_err_str[e] : "unknown wire error";
}

const char *rly_wire_err_name(enum rly_wire_err e)
{
	return (unsigned)e < RLY_WIRE_ERR_MAX ? wire_err_name[e] : "UNKNOWN";
}

const char *rly_msg_type_name(unsigned type)
{
	switch (type) {
#define X(name, value, body, dir, desc)                                                                \
	case value:                                                                                    \
		return #name;
		RLY_FOREACH_MSG_TYPE(X)
#undef X
	default:
		return NULL;
	}
}

const char *rly_sub_status_str(unsigned status)
{
	switch (status) {
#define X(name, value, desc)                                                                           \
	case value:                                                                                    \
		return desc;
		RLY_FOREACH_SUB_STATUS(X)
#undef X
	default:
		return "unknown status";
	}
}

const char *rly_sub_status_name(unsigned status)
{
	switch (status) {
#define X(name, value, desc)                                                                           \
	case value:                                                                                    \
		return #name;
		RLY_FOREACH_SUB_STATUS(X)
#undef X
	default:
		return "UNKNOWN";
	}
}

const char *rly_gap_reason_name(unsigned reason)
{
	switch (reason) {
#define X(name, value, final, desc)                                                                    \
	case value:                                                                                    \
		return #name;
		RLY_FOREACH_GAP_REASON(X)
#undef X
	default:
		return "UNKNOWN";
	}
}

const char *rly_gap_reason_str(unsigned reason)
{
	switch (reason) {
#define X(name, value, final, desc)                                                                    \
	case value:                                                                                    \
		return desc;
		RLY_FOREACH_GAP_REASON(X)
#undef X
	default:
		return "unknown reason";
	}
}

int rly_gap_reason_final(unsigned reason)
{
	switch (reason) {
#define X(name, value, final, desc)                                                                    \
	case value:                                                                                    \
		return final;
		RLY_FOREACH_GAP_REASON(X)
#undef X
	default:
		return 1;
	}
}

const char *rly_cmd_status_str(unsigned status)
{
	switch (status) {
#define X(name, value, desc)                                                                           \
	case value:                                                                                    \
		return desc;
		RLY_FOREACH_CMD_STATUS(X)
#undef X
	default:
		return "unknown command status";
	}
}

/* Counter names are the X-macro ids in lower case, made once on first use. */
static const char *const ctr_ids[] = {
#define X(id, kind, desc) [RLY_CTR_##id] = #id,
	RLY_FOREACH_COUNTER(X)
#undef X
};
static const char *const ctr_descs[] = {
#define X(id, kind, desc) [RLY_CTR_##id] = desc,
	RLY_FOREACH_COUNTER(X)
#undef X
};
static const int ctr_kinds[] = {
#define X(id, kind, desc) [RLY_CTR_##id] = RLY_CTR_KIND_##kind,
	RLY_FOREACH_COUNTER(X)
#undef X
};

static char ctr_lower[RLY_CTR_MAX][40];

/*
 * Filled before main() rather than on first use: relay-stat and the control process read names
 * from several threads, and lazily writing the table while another thread reads it is a data race
 * even when both write the same bytes.
 */
__attribute__((constructor)) static void make_ctr_names(void)
{
	for (unsigned id = 0; id < RLY_CTR_MAX; id++) {
		size_t i;
		for (i = 0; ctr_ids[id][i] != '\0' && i + 1 < sizeof(ctr_lower[id]); i++)
			ctr_lower[id][i] = (char)tolower((unsigned char)ctr_ids[id][i]);
		ctr_lower[id][i] = '\0';
	}
}

const char *rly_ctr_name(unsigned id)
{
	return id < RLY_CTR_MAX ? ctr_lower[id] : NULL;
}

const char *rly_ctr_desc(unsigned id)
{
	return id < RLY_CTR_MAX ? ctr_descs[id] : NULL;
}

int rly_ctr_kind(unsigned id)
{
	return id < RLY_CTR_MAX ? ctr_kinds[id] : RLY_CTR_KIND_COUNT;
}
