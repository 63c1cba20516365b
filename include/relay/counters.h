/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file counters.h
 * Counter ids of the relay's shared-memory counters page.
 *
 * Each writer (every worker lcore, the manager lcore, relay-control) owns one block of
 * RLY_CTR_SLOTS 64-bit counters on its own cache lines and is the only thread that writes it, so
 * counting is a plain store. Readers (relay-stat, tests) sum a counter over all blocks. Ids are
 * appended, never renumbered: an older reader shows what it knows and ignores the rest.
 */
#ifndef RLY_COUNTERS_H
#define RLY_COUNTERS_H

#include <stdint.h>

#include "relay/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A counter counts events (a reader shows a rate); a gauge is a current level. */
#define RLY_CTR_KIND_COUNT 0
#define RLY_CTR_KIND_GAUGE 1

/**
 * X(ID, kind, "description"). Frame-level drops are DROP_*; datagrams refused by the wire parser
 * are counted once in DROP_WIRE and once per reason in the wire error slots.
 */
#define RLY_FOREACH_COUNTER(X)                                                                         \
	X(RX_PKTS, COUNT, "frames received")                                                          \
	X(RX_BYTES, COUNT, "bytes received (Ethernet frames)")                                        \
	X(RX_DGRAMS, COUNT, "relay datagrams that passed validation")                                 \
	X(RX_MSGS, COUNT, "data messages received")                                                   \
	X(DELIVERIES, COUNT, "data messages sent to subscribers (one per message per subscriber)")   \
	X(TX_PKTS, COUNT, "frames handed to the port")                                                \
	X(TX_BYTES, COUNT, "bytes handed to the port (Ethernet frames)")                              \
	X(TX_DROP, COUNT, "frames the port's tx queue refused, dropped")                              \
	X(PUNTED, COUNT, "control datagrams passed to relay-control")                                 \
	X(CTL_TX, COUNT, "datagrams sent on behalf of relay-control")                                 \
	X(ARP_REPLIES, COUNT, "ARP requests for the relay's address answered")                        \
	X(NO_SUBSCRIBERS, COUNT, "data messages for a stream with no subscriber here")                \
	X(DROP_RUNT, COUNT, "frame shorter than its headers")                                          \
	X(DROP_NOT_IP, COUNT, "frame neither IPv4 nor ARP")                                           \
	X(DROP_IP_HDR, COUNT, "bad IPv4 version, header length or total length")                      \
	X(DROP_IP_CSUM, COUNT, "bad IPv4 header checksum")                                             \
	X(DROP_IP_FRAG, COUNT, "IPv4 fragment (relay datagrams are never fragmented)")                \
	X(DROP_NOT_UDP, COUNT, "IPv4 but not UDP")                                                    \
	X(DROP_NOT_FOR_US, COUNT, "destination address or UDP port is not the relay's")               \
	X(DROP_UDP_LEN, COUNT, "UDP length disagrees with the IPv4 length")                           \
	X(DROP_UDP_CSUM, COUNT, "bad UDP checksum")                                                    \
	X(DROP_ARP, COUNT, "ARP that is not a request for the relay's address")                       \
	X(DROP_WIRE, COUNT, "relay datagram refused by the parser (see the wire_* reasons)")          \
	X(DROP_PUNT_FULL, COUNT, "control datagram dropped: relay-control's ring is full")            \
	X(DROP_NOMBUF, COUNT, "delivery dropped: mbuf pool empty")                                     \
	X(DROP_CTL_TX_BAD, COUNT, "unusable tx record from relay-control")                            \
	X(CMD_APPLIED, COUNT, "commands from relay-control applied")                                  \
	X(CMD_REFUSED, COUNT, "commands from relay-control refused (see its log)")                    \
	X(RCU_SYNCS, COUNT, "subscriber-table grace periods waited for")                             \
	X(STREAMS, GAUGE, "streams with at least one subscriber")                                     \
	X(SUBSCRIBERS, GAUGE, "subscriber endpoints, summed over streams")                            \
	X(CTL_SUB_REQ, COUNT, "SUBSCRIBE requests received by relay-control")                         \
	X(CTL_CHALLENGES, COUNT, "CHALLENGEs sent")                                                    \
	X(CTL_SUB_ADDED, COUNT, "subscribers added after a passed challenge")                         \
	X(CTL_SUB_REFUSED, COUNT, "SUBSCRIBEs refused (bad or expired cookie, table full)")           \
	X(CTL_UNSUBSCRIBED, COUNT, "subscriptions ended by UNSUBSCRIBE")                              \
	X(CTL_HEARTBEATS, COUNT, "leases renewed by HEARTBEAT")                                        \
	X(CTL_EXPIRED, COUNT, "subscriptions ended because their lease ran out")                      \
	X(CTL_BAD_TOKEN, COUNT, "HEARTBEAT or UNSUBSCRIBE with an unknown subscription or token")     \
	X(CTL_RESYNCS, COUNT, "table resynchronisations after relay-control (re)attached")            \
	X(CTL_BAD_RECORD, COUNT, "unusable records from the dataplane's rings")                       \
	X(CTL_TX_FULL, COUNT, "replies dropped: the dataplane's tx ring is full")                     \
	X(IDLE_SLEEPS, COUNT, "loop turns that slept under the back-off idle strategy")              \
	X(DROP_MULTISEG, COUNT, "frame spread over several mbufs (larger than the relay's MTU)")     \
	X(DROP_WRONG_WAY, COUNT, "relay-to-client control message sent to the relay")               \
	X(BUSY_CYCLES, COUNT, "TSC cycles in loop turns that found work (rate / tsc_hz = load)")      \
	X(RX_BURSTS, COUNT, "rx bursts that returned frames (rx_pkts / rx_bursts: 32 = saturated)")   \
	X(DROP_NOT_ADMITTED, COUNT, "data messages from a publisher the registry does not admit")     \
	X(ADMIT_STREAMS, GAUGE, "streams with a publisher admission list")                           \
	X(CTL_SUB_DENIED, COUNT, "SUBSCRIBEs the stream registry refused, or with a bad signature")  \
	X(CTL_REVOKED, COUNT, "subscriptions removed because the registry stopped allowing them")   \
	X(CTL_REGISTRY_LOADS, COUNT, "stream registry (re)loads")                                      \
	X(CTL_REGISTRY_REFUSED, COUNT, "registry records refused at load (signature, field, issuer)") \
	X(DROP_PUNT_RATE, COUNT, "control datagrams over their source's rate (relay --punt-rate)")    \
	X(CTL_KEY_REQUESTS, COUNT, "KEY_REQUESTs forwarded to a publisher's key holders")              \
	X(CTL_KEY_REFUSED, COUNT, "KEY_REQUESTs dropped: no subscription, bad token, identity not proven, bad signature") \
	X(CTL_KEY_NO_HOLDER, COUNT, "KEY_REQUESTs answered UNAVAILABLE: no key holder for that publisher") \
	X(CTL_KEY_RESPONSES, COUNT, "KEY_RESPONSEs forwarded to the subscriber that asked")            \
	X(CTL_KEY_UNEXPECTED, COUNT, "KEY_RESPONSEs dropped: not from a key holder, or nobody waits for them") \
	X(CTL_KEY_TIMEOUTS, COUNT, "forwarded KEY_REQUESTs that no key holder answered in time")      \
	X(CTL_KEY_HOLDERS, GAUGE, "key holders registered")                                          \
	X(DROP_PUNT_OPEN, COUNT, "control datagrams not from a subscriber (SUBSCRIBE, ...) dropped: relay-control's ring is half full, the rest is kept for subscribers") \
	X(CTL_LEASE_GRACE, COUNT, "lease ends postponed because the dataplane dropped control datagrams (heartbeats may be among them)") \
	X(CTL_REPLY_SHED, COUNT, "CHALLENGEs and cookie refusals not sent: the tx ring is half full, the rest is kept for existing subscriptions") \
	X(DEDUP_DUPLICATES, COUNT, "data messages dropped as duplicates (same publisher, chain and seq seen before)") \
	X(DEDUP_TOO_OLD, COUNT, "data messages dropped: older than the chain's dedup window (relay --dedup-window)") \
	X(DEDUP_UNTRACKED, COUNT, "data messages forwarded without dedup: no free chain slot (relay --dedup-chains)") \
	X(DEDUP_CHAINS, GAUGE, "publisher chains in the dedup table")                                \
	X(PEER_RX_MSGS, COUNT, "data messages received from peer relays")                            \
	X(PEER_DELIVERIES, COUNT, "data messages sent to peer relays (part of deliveries)")          \
	X(SPLIT_HORIZON, COUNT, "deliveries not made: the peer the message came from")              \
	X(PUNT_REPORTS, COUNT, "publisher-seen and duplicate reports handed to relay-control")       \
	X(NEIGH_LEARNT, COUNT, "ARP packets handed to relay-control as neighbour entries")           \
	X(ARP_REQUESTS, COUNT, "ARP requests sent for relay-control")                               \
	X(CTL_PEERS, GAUGE, "peer relay sessions established")                                      \
	X(CTL_PEER_REFUSED, COUNT, "peer messages dropped: no session, bad token, cookie or signature") \
	X(CTL_PEER_DEAD, COUNT, "peer sessions ended because the peer stopped answering")           \
	X(CTL_OVERLAYS, GAUGE, "stream overlays this relay is a member of")                          \
	X(CTL_LINKS_EAGER, GAUGE, "eager overlay links (messages pushed)")                         \
	X(CTL_LINKS_LAZY, GAUGE, "lazy overlay links (IHAVE summaries only)")                      \
	X(CTL_PRUNES, COUNT, "eager links made lazy after a duplicate (PRUNE sent or received)")    \
	X(CTL_GRAFTS, COUNT, "lazy links made eager after a missed message (GRAFT sent or received)") \
	X(CTL_IHAVE_SENT, COUNT, "IHAVE summaries sent over lazy links")                            \
	X(CTL_JOIN_REFUSED, COUNT, "overlay JOINs refused (full, or not serving the stream)")       \
	X(CTL_DISC_RECORDS, GAUGE, "discovery records held (own and learnt)")                       \
	X(CTL_DISC_ANNOUNCES, COUNT, "discovery records announced")                                 \
	X(CTL_DISC_LOOKUPS, COUNT, "discovery lookups made")                                       \
	X(CTL_DISC_BAD, COUNT, "discovery records refused: bad signature or expired")               \
	X(CTL_REPAIR_SENT, COUNT, "messages sent again to a peer that asked (IWANT), from the history") \
	X(CTL_REPAIR_UNAVAILABLE, COUNT, "messages a peer asked for (IWANT) that the history no longer holds") \
	X(NAK_RX, COUNT, "NAKs received from subscribers")                                          \
	X(NAK_NOT_SUBSCRIBER, COUNT, "NAKs dropped: the source is not a subscriber of the stream")   \
	X(REPAIR_MSGS, COUNT, "messages sent again to subscribers that asked (NAK), from the history") \
	X(REPAIR_BYTES, COUNT, "message bytes sent again to subscribers (part of the repair budget)") \
	X(GAP_SENT, COUNT, "GAP notices sent to subscribers (every reason)")                         \
	X(GAP_EVICTED, COUNT, "messages asked for that the history no longer holds (GAP EVICTED)")  \
	X(GAP_MISSING, COUNT, "messages asked for that the relay never received (GAP MISSING)")     \
	X(NAK_UNKNOWN_CHAIN, COUNT, "NAKs for a chain with no history here (GAP UNKNOWN_CHAIN)")    \
	X(NAK_PACED, COUNT, "NAKs answered in part: the subscriber's repair budget ran out (GAP PACED)") \
	X(NAK_HOLDOFF, COUNT, "messages not sent again: the same subscriber had them sent within --nak-holdoff-us") \
	X(SLOW_CUTS, COUNT, "subscribers cut off as slow consumers (GAP SLOW_CONSUMER; relay-control ends the subscription)") \
	X(HIST_NO_SLOT, COUNT, "chains that found no free history slot (relay --history-chains); retried each second") \
	X(HIST_CHAINS, GAUGE, "history slots in use")                                              \
	X(CTL_SLOW_CUT, COUNT, "subscriptions ended because the dataplane cut a slow consumer")

enum rly_ctr {
#define X(id, kind, desc) RLY_CTR_##id,
	RLY_FOREACH_COUNTER(X)
#undef X
	RLY_CTR_MAX
};

/** Counter slots per block; ids below are counters, slots from RLY_CTR_WIRE_BASE are wire errors. */
#define RLY_CTR_SLOTS 256u
/** Slot of the first wire error counter: slot RLY_CTR_WIRE_BASE + e counts enum rly_wire_err e. */
#define RLY_CTR_WIRE_BASE 192u

_Static_assert(RLY_CTR_MAX <= RLY_CTR_WIRE_BASE, "counter ids ran into the wire error slots");
_Static_assert(RLY_CTR_WIRE_BASE + RLY_WIRE_ERR_MAX <= RLY_CTR_SLOTS, "too many wire errors");

/** One writer's counters, on cache lines of their own. */
struct rly_ctr_block {
	uint64_t v[RLY_CTR_SLOTS];
} __attribute__((aligned(64)));

/** Lower-case name of a counter ("rx_pkts"), or NULL if the id is unknown to this build. */
const char *rly_ctr_name(unsigned id);
/** Description of a counter, or NULL. */
const char *rly_ctr_desc(unsigned id);
/** RLY_CTR_KIND_COUNT or RLY_CTR_KIND_GAUGE. */
int rly_ctr_kind(unsigned id);

#ifdef __cplusplus
}
#endif
#endif /* RLY_COUNTERS_H */
