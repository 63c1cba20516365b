/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-pub and relay-sub as processes, talking through the fake relay (which forwards DATA to
 * its subscriber, and can forge copies of it), with and without identity files, plus the argument
 * checks of all three tools. Binaries come from the
 * RELAY_PUB, RELAY_SUB and RELAY_STAT environment variables set by tests/meson.build.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/clock.h"
#include "security/identity.h"
#include "test_client_fake_relay.h"
#include "test_client_proc.h"

static const char *tool(const char *env)
{
	const char *p = getenv(env);

	cr_assert_not_null(p, "%s is not set: run this test through meson test", env);
	return p;
}

/* Run a command to its end; its output (stderr included) lands in @p out. Returns its status. */
#define run(out, cap, ...) tc_finish(tc_spawn(__VA_ARGS__), (out), (cap))

/* The last non-empty line of @p s. */
static const char *last_line(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	while (n > 0 && s[n - 1] != '\n')
		n--;
	return s + n;
}

static unsigned count_lines_starting(const char *s, const char *prefix)
{
	unsigned n = 0;

	for (const char *p = tc_line_starting(s, prefix); p; p = tc_line_starting(p + 1, prefix))
		n++;
	return n;
}

static void wait_for_file(const char *path)
{
	struct stat st;
	uint64_t until = rly_mono_ns() + 10000000000ull;

	while (stat(path, &st) != 0) {
		cr_assert_lt(rly_mono_ns(), until, "%s never appeared", path);
		usleep(10000);
	}
}

Test(client_tools, pub_and_sub_deliver_every_message_in_order_and_verified, .timeout = 60)
{
	static char sub_out[1 << 16], pub_out[4096];
	struct fake_relay fr = {.forward_data = 1};
	char ready[64], cmd[1024];
	const char *json;
	unsigned dgrams;
	FILE *sub;

	cr_assert_eq(fake_relay_start(&fr), 0);
	snprintf(ready, sizeof(ready), "/tmp/relay-sub-ready.%d", getpid());
	unlink(ready);
	snprintf(
	    cmd, sizeof(cmd),
	    "%s --relay %s --stream tools.test --partition 3 --count 200 --duration 30 --verify "
	    "--print --json --ready-file %s",
	    tool("RELAY_SUB"), fr.addr, ready);
	sub = popen(cmd, "r");
	cr_assert_not_null(sub);
	wait_for_file(ready);

	cr_assert_eq(run(pub_out, sizeof(pub_out),
			 "%s --relay %s --stream tools.test --partition 3 --count 200 --size 40 "
			 "--batch 4 --rate 20000 --json --quiet",
			 tool("RELAY_PUB"), fr.addr),
		     0, "%s", pub_out);
	json = last_line(pub_out);
	cr_assert(strstr(json, "\"msgs\":200,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"last_seq\":200,") != NULL, "%s", json);
	/* Paced sending flushes before each pause, so some datagrams leave with fewer than 4. */
	cr_assert_eq(sscanf(strstr(json, "\"dgrams\":"), "\"dgrams\":%u", &dgrams), 1, "%s", json);
	cr_assert_geq(dgrams, 50);
	cr_assert_leq(dgrams, 200);

	cr_assert_eq(tc_finish(sub, sub_out, sizeof(sub_out)), 0, "%s", sub_out);
	cr_assert_eq(count_lines_starting(sub_out, "msg pub="), 200, "%s", sub_out);
	json = last_line(sub_out);
	cr_assert_eq(json[0], '{', "%s", json);
	cr_assert(strstr(json, "\"msgs\":200,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"gaps\":0,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"stale\":0,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"chains\":1,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"verify_failures\":0,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"bad_sig\":0,\"sig_checked\":true,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"subscribed\":true,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"lat_us\":{\"p50\":") != NULL, "%s", json);
	cr_assert_eq(FR_GET(&fr, data_dgrams), dgrams);
	cr_assert_eq(FR_GET(&fr, unsubscribes), 1, "relay-sub unsubscribes at exit by default");
	unlink(ready);
	fake_relay_stop(&fr);
}

Test(client_tools, pub_at_full_speed_fills_every_datagram_with_batch_messages, .timeout = 30)
{
	static char out[4096];
	struct fake_relay fr = {0};
	const char *json;
	uint64_t until;

	cr_assert_eq(fake_relay_start(&fr), 0);
	cr_assert_eq(run(out, sizeof(out),
			 "%s --relay %s --stream x --count 200 --size 40 --batch 4 --json",
			 tool("RELAY_PUB"), fr.addr),
		     0, "%s", out);
	json = last_line(out);
	cr_assert(strstr(json, "\"msgs\":200,\"dgrams\":50,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"bytes\":40400,") != NULL, "50 * (8 + 4 * (96 + 40 + 64)): %s",
		  json);
	until = rly_mono_ns() + 5000000000ull;
	while (FR_GET(&fr, data_dgrams) < 50 && rly_mono_ns() < until)
		usleep(1000);
	cr_assert_eq(FR_GET(&fr, data_dgrams), 50);
	cr_assert_eq(FR_GET(&fr, malformed), 0);
	fake_relay_stop(&fr);
}

Test(client_tools, sub_no_verify_lets_corrupted_payloads_through_to_verify, .timeout = 60)
{
	static char sub_out[1 << 16], pub_out[4096];
	struct fake_relay fr = {.forward_data = 1, .corrupt_data = 1};
	char ready[64], cmd[1024];
	const char *json;
	FILE *sub;

	cr_assert_eq(fake_relay_start(&fr), 0);
	snprintf(ready, sizeof(ready), "/tmp/relay-sub-ready.%d", getpid());
	unlink(ready);
	snprintf(cmd, sizeof(cmd),
		 "%s --relay %s --stream-key 000102030405060708090a0b0c0d0e0f --count 20 "
		 "--duration 30 --verify --no-verify --no-unsubscribe --json --ready-file %s",
		 tool("RELAY_SUB"), fr.addr, ready);
	sub = popen(cmd, "r");
	cr_assert_not_null(sub);
	wait_for_file(ready);
	cr_assert_eq(run(pub_out, sizeof(pub_out),
			 "%s --relay %s --stream-key 000102030405060708090A0B0C0D0E0F --count 20 "
			 "--size 16 --rate 5000 --quiet",
			 tool("RELAY_PUB"), fr.addr),
		     0, "%s", pub_out);
	cr_assert_eq(tc_finish(sub, sub_out, sizeof(sub_out)), 0, "%s", sub_out);
	json = last_line(sub_out);
	cr_assert(strstr(json, "\"msgs\":20,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"verify_failures\":20,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"bad_sig\":0,\"sig_checked\":false,") != NULL, "%s", json);
	cr_assert(strstr(sub_out, "(signatures not checked)") != NULL, "%s", sub_out);
	cr_assert_eq(FR_GET(&fr, corrupted), 20);
	cr_assert_eq(FR_GET(&fr, unsubscribes), 0, "--no-unsubscribe");
	unlink(ready);
	fake_relay_stop(&fr);
}

Test(client_tools, sub_exits_1_and_names_the_status_when_refused, .timeout = 30)
{
	static char out[8192];
	struct fake_relay fr = {.sub_status = RLY_SUB_TABLE_FULL};

	cr_assert_eq(fake_relay_start(&fr), 0);
	cr_assert_eq(
	    run(out, sizeof(out), "%s --relay %s --stream x --json", tool("RELAY_SUB"), fr.addr), 1,
	    "%s", out);
	cr_assert(strstr(out, "refused: TABLE_FULL") != NULL, "%s", out);
	cr_assert(strstr(last_line(out), "\"subscribed\":false,") != NULL, "%s", out);
	fake_relay_stop(&fr);
}

Test(client_tools, sub_exits_1_and_says_it_timed_out_when_nobody_answers, .timeout = 30)
{
	static char out[8192];
	struct fake_relay fr = {.drop_challenges = 1000};

	cr_assert_eq(fake_relay_start(&fr), 0);
	cr_assert_eq(run(out, sizeof(out), "%s --relay %s --stream x --subscribe-timeout 0.3",
			 tool("RELAY_SUB"), fr.addr),
		     1, "%s", out);
	cr_assert(strstr(out, "timed out") != NULL, "%s", out);
	fake_relay_stop(&fr);
}

Test(client_tools, tools_refuse_bad_arguments_with_status_2_and_the_fix)
{
	static char out[8192];
	const struct {
		const char *env, *args, *says;
	} cases[] = {
	    {"RELAY_PUB", "--stream x", "--relay ADDR[:PORT] is required"},
	    {"RELAY_PUB", "--relay 127.0.0.1", "--stream NAME or --stream-key HEX"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --size 4", "from 8 to 1804"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --size 1805", "from 8 to 1804"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --identity", "needs a value"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --rate fast", "--rate 'fast'"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --stream y", "one of --stream"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --batch 20 --size 100", "lower --batch"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --count", "needs a value"},
	    {"RELAY_PUB", "--relay 127.0.0.1 --stream x --bogus", "unknown option '--bogus'"},
	    {"RELAY_SUB", "--relay 127.0.0.1 --stream-key 00ff", "32 hex digits"},
	    {"RELAY_SUB", "--relay 127.0.0.1 --stream x --idle-timeout -1", "--idle-timeout"},
	    {"RELAY_SUB", "--relay 127.0.0.1 --stream x stray", "unexpected argument 'stray'"},
	    {"RELAY_STAT", "--interval 0", "--interval '0'"},
	    {"RELAY_STAT", "--instance bad/name", "A-Z a-z 0-9"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(out, sizeof(out), "%s %s", tool(cases[i].env), cases[i].args);
		cr_assert_eq(rc, 2, "%s %s: exit %d: %s", cases[i].env, cases[i].args, rc, out);
		cr_assert(strstr(out, cases[i].says) != NULL, "%s %s: %s", cases[i].env,
			  cases[i].args, out);
		cr_assert(strstr(out, "--help") != NULL, "%s %s: %s", cases[i].env, cases[i].args,
			  out);
	}
}

Test(client_tools, help_explains_every_option)
{
	static char out[8192];
	const struct {
		const char *env;
		const char *opts[20];
	} cases[] = {
	    {"RELAY_PUB",
	     {"--relay", "--stream ", "--stream-key", "--partition", "--rate", "--size", "--count",
	      "--duration", "--batch", "--bind", "--identity", "--json", "--quiet", "--help"}},
	    {"RELAY_SUB",
	     {"--relay", "--stream ", "--stream-key", "--partition", "--lease-ms", "--bind",
	      "--identity", "--no-verify", "--count", "--duration", "--idle-timeout", "--print",
	      "--verify", "--ready-file", "--unsubscribe-at-exit", "--no-unsubscribe", "--json",
	      "--help"}},
	    {"RELAY_STAT",
	     {"--instance", "--interval", "--count", "--once", "--workers", "--all", "--json",
	      "--help"}},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(run(out, sizeof(out), "%s --help", tool(cases[i].env)), 0);
		for (size_t k = 0; cases[i].opts[k]; k++)
			cr_assert(strstr(out, cases[i].opts[k]) != NULL, "%s --help lacks %s",
				  cases[i].env, cases[i].opts[k]);
	}
}

/* ------------------------------------------------------------------ signatures and identities */

Test(client_tools, sub_drops_every_forged_copy_and_still_gets_every_original, .timeout = 60)
{
	static char sub_out[1 << 16], pub_out[4096];
	/* Before each datagram it forwards, the fake relay sends a copy with a payload byte
	 * flipped. */
	struct fake_relay fr = {.forward_data = 1, .corrupt_data = 1, .original_too = 1};
	char ready[64], cmd[1024];
	const char *json;
	FILE *sub;

	cr_assert_eq(fake_relay_start(&fr), 0);
	snprintf(ready, sizeof(ready), "/tmp/relay-sub-ready.%d", getpid());
	unlink(ready);
	snprintf(cmd, sizeof(cmd),
		 "%s --relay %s --stream forged --count 20 --duration 30 --verify --print --json "
		 "--ready-file %s",
		 tool("RELAY_SUB"), fr.addr, ready);
	sub = popen(cmd, "r");
	cr_assert_not_null(sub);
	wait_for_file(ready);
	cr_assert_eq(run(pub_out, sizeof(pub_out),
			 "%s --relay %s --stream forged --count 20 --size 16 --rate 5000 --quiet",
			 tool("RELAY_PUB"), fr.addr),
		     0, "%s", pub_out);
	cr_assert_eq(tc_finish(sub, sub_out, sizeof(sub_out)), 0, "%s", sub_out);
	json = last_line(sub_out);
	cr_assert(strstr(json, "\"msgs\":20,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"bad_sig\":20,\"sig_checked\":true,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"gaps\":0,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"stale\":0,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"verify_failures\":0,") != NULL, "no forged payload got through: %s",
		  json);
	cr_assert_eq(count_lines_starting(sub_out, "bad-sig claims-pub="), 20, "%s", sub_out);
	cr_assert(strstr(sub_out, "reason=bad-signature") != NULL, "%s", sub_out);
	cr_assert(strstr(sub_out, "bad_sig 20,") != NULL, "text summary: %s", sub_out);
	cr_assert_eq(FR_GET(&fr, corrupted), 20);
	unlink(ready);
	fake_relay_stop(&fr);
}

/* A fresh identity saved to a file of its own; returns the path (static storage per slot). */
static const char *identity_file(unsigned slot, struct rly_identity *id)
{
	static char path[2][64];

	snprintf(path[slot], sizeof(path[slot]), "/tmp/relay-tools-id%u.%d", slot, getpid());
	unlink(path[slot]);
	cr_assert_eq(rly_identity_generate(id), 0);
	cr_assert_eq(rly_identity_save(id, path[slot]), 0, "%s", rly_client_errmsg());
	return path[slot];
}

Test(client_tools, identity_files_name_the_publisher_and_sign_the_subscribe, .timeout = 60)
{
	static char sub_out[1 << 16], pub_out[4096];
	struct fake_relay fr = {.forward_data = 1};
	struct rly_identity pub_id, sub_id;
	const char *pub_file = identity_file(0, &pub_id), *sub_file = identity_file(1, &sub_id);
	char ready[64], cmd[1024], pk[2 * RLY_ID_LEN + 1], want[128];
	const char *json;
	FILE *sub;

	cr_assert_eq(fake_relay_start(&fr), 0);
	snprintf(ready, sizeof(ready), "/tmp/relay-sub-ready.%d", getpid());
	unlink(ready);
	snprintf(cmd, sizeof(cmd),
		 "%s --relay %s --stream ids --count 5 --duration 30 --print --json --identity %s "
		 "--ready-file %s",
		 tool("RELAY_SUB"), fr.addr, sub_file, ready);
	sub = popen(cmd, "r");
	cr_assert_not_null(sub);
	wait_for_file(ready);
	/* The fake relay checked the SUBSCRIBE_SIGNED's signature with libsodium. */
	cr_assert_eq(FR_GET(&fr, signed_answers), 1);
	cr_assert_eq(FR_GET(&fr, bad_signed_answers), 0);
	cr_assert_arr_eq(fr.last_subscriber, sub_id.pk, RLY_ID_LEN);

	cr_assert_eq(run(pub_out, sizeof(pub_out),
			 "%s --relay %s --stream ids --count 5 --rate 1000 --json --identity %s",
			 tool("RELAY_PUB"), fr.addr, pub_file),
		     0, "%s", pub_out);
	rly_pk_format(pub_id.pk, pk);
	snprintf(want, sizeof(want), "\"publisher\":\"%s\"", pk);
	cr_assert(strstr(last_line(pub_out), want) != NULL, "%s lacks %s", pub_out, want);

	cr_assert_eq(tc_finish(sub, sub_out, sizeof(sub_out)), 0, "%s", sub_out);
	snprintf(want, sizeof(want), "msg pub=%.16s chain=", pk);
	cr_assert_eq(count_lines_starting(sub_out, want), 5, "%s", sub_out);
	json = last_line(sub_out);
	cr_assert(strstr(json, "\"msgs\":5,") != NULL, "%s", json);
	cr_assert(strstr(json, "\"bad_sig\":0,") != NULL, "%s", json);
	unlink(ready);
	unlink(pub_file);
	unlink(sub_file);
	fake_relay_stop(&fr);
}

Test(client_tools, tools_exit_1_naming_an_identity_file_they_cannot_use, .timeout = 30)
{
	static char out[8192];
	struct rly_identity id;
	const char *file = identity_file(0, &id);
	struct fake_relay fr = {0};

	cr_assert_eq(fake_relay_start(&fr), 0);
	cr_assert_eq(run(out, sizeof(out), "%s --relay %s --stream x --count 1 --identity %s.none",
			 tool("RELAY_PUB"), fr.addr, file),
		     1, "%s", out);
	cr_assert(strstr(out, "--identity") != NULL, "%s", out);
	cr_assert(strstr(out, ".none") != NULL, "%s", out);
	/* Readable by others: refused, with the fix in the message. */
	cr_assert_eq(chmod(file, 0644), 0);
	cr_assert_eq(run(out, sizeof(out), "%s --relay %s --stream x --identity %s",
			 tool("RELAY_SUB"), fr.addr, file),
		     1, "%s", out);
	cr_assert(strstr(out, "chmod 600") != NULL, "%s", out);
	cr_assert_eq(FR_GET(&fr, subscribes_first), 0, "nothing was sent");
	unlink(file);
	fake_relay_stop(&fr);
}
