/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The relay binary's front door: its options and config file, the messages for bad ones, --help
 * covering every option, and proof that jemalloc really is its allocator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/err.h"
#include "relay/options.h"

static int parse(struct rly_relay_opts *o, const char *line)
{
	char buf[512], *argv[32];
	int argc = 0;

	snprintf(buf, sizeof(buf), "relay %s", line);
	for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	return rly_relay_opts_parse(o, argc, argv, stdout);
}

static void expect_error(const char *line, const char *needle)
{
	struct rly_relay_opts o;
	cr_assert_lt(parse(&o, line), 0, "'%s' was accepted", line);
	cr_assert(strstr(rly_err_msg(), needle), "'%s': message '%s' lacks '%s'", line, rly_err_msg(),
		  needle);
}

Test(relay_options, defaults_and_overrides)
{
	struct rly_relay_opts o;

	cr_assert_eq(parse(&o, "--ip 198.18.0.1"), RLY_OPTS_RUN);
	cr_assert_eq(o.ip_be, htonl(0xc6120001));
	cr_assert_eq(o.udp_port, 4747);
	cr_assert_eq(o.mtu, 1500);
	cr_assert_eq(o.batch, 1);
	cr_assert_eq(o.idle, 0);
	cr_assert_str_eq(o.instance, "default");
	cr_assert_eq(parse(&o, "--ip=10.0.0.1 --udp-port 9 --idle backoff --batch off --instance x-1 "
			       "--punt-ring 256 --mtu=9000"),
		     -EINVAL);
	cr_assert_eq(parse(&o, "--ip=10.0.0.1 --udp-port 9 --idle backoff --batch off --instance x-1 "
			       "--punt-ring 256 --mtu=2000"),
		     RLY_OPTS_RUN);
	cr_assert_eq(o.udp_port, 9);
	cr_assert_eq(o.idle, 1);
	cr_assert_eq(o.batch, 0);
	cr_assert_eq(o.punt_ring, 256);
	cr_assert_eq(o.mtu, 2000);
	cr_assert_str_eq(o.instance, "x-1");
}

Test(relay_options, bad_options_are_refused_with_the_fix)
{
	expect_error("", "--ip is required");
	expect_error("--ip 300.1.1.1", "not a usable IPv4 address");
	expect_error("--ip 1.2.3.4 --mtuu 1500", "did you mean '--mtu'");
	expect_error("--ip 1.2.3.4 --mtu 100", "out of range: use 576 to");
	expect_error("--ip 1.2.3.4 --mtu abc", "not a number");
	expect_error("--ip 1.2.3.4 --idle sometimes", "not one of busy|backoff");
	expect_error("--ip 1.2.3.4 --cmd-ring 1000", "not a power of two");
	expect_error("--ip 1.2.3.4 --udp-port", "needs a value");
	expect_error("--ip 1.2.3.4 stray", "unexpected argument 'stray'");
	expect_error("--ip 1.2.3.4 --instance 0123456789012345678901234567890123456789",
		     "longer than");
}

Test(relay_options, config_file_is_read_and_the_command_line_wins)
{
	char path[] = "/tmp/relay-conf-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	struct rly_relay_opts o;
	char line[300];

	fprintf(f, "# a relay\nip = 10.1.2.3\nmtu = 1400   # smaller\n\nidle=backoff\n");
	fclose(f);
	snprintf(line, sizeof(line), "--config %s --mtu 1300", path);
	cr_assert_eq(parse(&o, line), RLY_OPTS_RUN, "%s", rly_err_msg());
	cr_assert_eq(o.ip_be, htonl(0x0a010203));
	cr_assert_eq(o.mtu, 1300, "command line overrides the file");
	cr_assert_eq(o.idle, 1);

	f = fopen(path, "w");
	fprintf(f, "ip = 10.1.2.3\nmaxstreams = 5\n");
	fclose(f);
	snprintf(line, sizeof(line), "--config %s", path);
	expect_error(line, ":2: unknown key 'maxstreams' (did you mean 'max-streams'?)");
	f = fopen(path, "w");
	fprintf(f, "ip 10.1.2.3\n");
	fclose(f);
	expect_error(line, ":1: expected 'key = value'");
	unlink(path);
	expect_error("--config /nonexistent/relay.conf", "No such file");
}

Test(relay_options, the_example_config_file_parses)
{
	const char *dir = getenv("RELAY_SRC");
	struct rly_relay_opts o;
	char line[600];

	cr_assert(dir, "RELAY_SRC not set (meson passes it)");
	snprintf(line, sizeof(line), "--config %s/relay/relay.conf.example", dir);
	cr_assert_eq(parse(&o, line), RLY_OPTS_RUN, "%s", rly_err_msg());
	cr_assert_str_eq(o.instance, "edge1");
	cr_assert_eq(o.mbufs, 65535);
}

Test(relay_options, help_explains_every_option)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	static const char *names[] = {"--ip", "--udp-port", "--instance", "--mtu", "--batch", "--idle",
				      "--idle-max-us", "--tx-drain-us", "--rx-desc", "--tx-desc",
				      "--mbufs", "--max-streams", "--max-subs-per-stream",
				      "--punt-ring", "--cmd-ring", "--config", "--chain-min-bytes", "--punt-rate", "--punt-burst"};
	rly_relay_usage(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert(strstr(text, names[i]), "--help does not mention %s", names[i]);
	cr_assert(strstr(text, "EAL options"));
	free(text);
}

static int run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n;
	cr_assert(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	return pclose(p);
}

Test(relay_binary, jemalloc_is_the_allocator_it_runs_with)
{
	const char *bin = getenv("RELAY_BIN");
	char cmd[512], out[4096];
	int status;

	cr_assert(bin, "RELAY_BIN not set (meson passes it)");
	snprintf(cmd, sizeof(cmd), "%s --version 2>&1", bin);
	status = run(cmd, out, sizeof(out));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
	/* mallctl("version") only answers inside a process whose malloc is jemalloc. */
	cr_assert(strstr(out, "allocator jemalloc 5."), "%s", out);
	snprintf(cmd, sizeof(cmd), "ldd %s", bin);
	run(cmd, out, sizeof(out));
	cr_assert(strstr(out, "libjemalloc"), "jemalloc is a DT_NEEDED of relay: %s", out);
}

Test(relay_binary, refuses_bad_options_before_touching_eal)
{
	const char *bin = getenv("RELAY_BIN");
	char cmd[512], out[4096];
	int status;

	snprintf(cmd, sizeof(cmd), "%s --no-huge -- --ip 10.0.0.1 --idle lazy 2>&1", bin);
	status = run(cmd, out, sizeof(out));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s", out);
	cr_assert(strstr(out, "relay: --idle: 'lazy' is not one of busy|backoff"), "%s", out);
	cr_assert_null(strstr(out, "EAL"), "EAL never started: %s", out);
}
